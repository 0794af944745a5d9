"""Photos and files attached to a case, stored through Django's storage API."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.models.case import Case, CaseEvent


class AttachmentKind(models.TextChoices):
    BEFORE = "before", _("处置前")
    AFTER = "after", _("处置后")
    VERIFICATION = "verification", _("核查")
    OTHER = "other", _("其他")


def attachment_path(instance: Attachment, filename: str) -> str:
    now = timezone.now()
    return f"cases/{now:%Y/%m}/{instance.case_id}/{filename}"


class Attachment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    event = models.ForeignKey(
        CaseEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    kind = models.CharField(_("类型"), max_length=16, choices=AttachmentKind.choices)
    file = models.FileField(_("文件"), upload_to=attachment_path)
    thumbnail = models.FileField(_("缩略图"), upload_to=attachment_path, blank=True)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    #: Where the photo was taken, from its EXIF data (then stripped from the file).
    lon = models.FloatField(null=True, blank=True)
    lat = models.FloatField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("附件")
        verbose_name_plural = _("附件")
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.file.name}"

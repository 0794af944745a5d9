"""The two-level taxonomy (大类/小类) and each subcategory's time limits."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.models.workcalendar import TimeUnit


class CategoryKind(models.TextChoices):
    COMPONENT = "component", _("部件")
    EVENT = "event", _("事件")
    REQUEST = "request", _("12345 诉求")


class RequestType(models.TextChoices):
    ENQUIRY = "enquiry", _("咨询")
    HELP = "help", _("求助")
    COMPLAINT = "complaint", _("投诉")
    REPORT = "report", _("举报")
    SUGGESTION = "suggestion", _("建议")


class Urgency(models.TextChoices):
    NORMAL = "normal", _("一般")
    URGENT = "urgent", _("紧急")
    EMERGENCY = "emergency", _("特急")


class Stage(models.TextChoices):
    """The stages of a case that each carry a deadline."""

    ACCEPT = "accept", _("受理")
    DISPATCH = "dispatch", _("派遣")
    ACKNOWLEDGE = "acknowledge", _("签收")
    HANDLE = "handle", _("处置")
    VERIFY = "verify", _("核查")
    CLOSE = "close", _("结案")
    FOLLOW_UP = "follow_up", _("回访")


class CategoryQuerySet(models.QuerySet["Category"]):
    def active(self) -> CategoryQuerySet:
        return self.filter(is_active=True)

    def majors(self) -> CategoryQuerySet:
        return self.filter(parent__isnull=True)

    def minors(self) -> CategoryQuerySet:
        return self.filter(parent__isnull=False)


class Category(models.Model):
    """A 大类 (no parent) or a 小类 (with its 大类 as parent)."""

    code = models.CharField(_("编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=16, choices=CategoryKind.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("大类"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    pinyin = models.CharField(
        _("拼音首字母"), max_length=64, blank=True, help_text=_("用于快速检索，如 zybj")
    )
    filing_criteria = models.TextField(_("立案条件"), blank=True)
    closing_criteria = models.TextField(_("结案条件"), blank=True)
    default_unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("默认责任单位"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="default_for_categories",
    )
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    objects = CategoryQuerySet.as_manager()

    class Meta:
        verbose_name = _("案件类别")
        verbose_name_plural = _("案件类别")
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        if self.parent_id and self.parent:
            return f"{self.parent.name} / {self.name}"
        return self.name


class TimeLimit(models.Model):
    """How long a stage of a subcategory may take, per urgency."""

    category = models.ForeignKey(
        Category, verbose_name=_("类别"), on_delete=models.CASCADE, related_name="time_limits"
    )
    urgency = models.CharField(_("紧急程度"), max_length=16, choices=Urgency.choices)
    stage = models.CharField(_("环节"), max_length=16, choices=Stage.choices)
    amount = models.DecimalField(_("时限"), max_digits=7, decimal_places=2)
    unit = models.CharField(
        _("计时单位"),
        max_length=16,
        choices=TimeUnit.choices,
    )

    class Meta:
        verbose_name = _("处置时限")
        verbose_name_plural = _("处置时限")
        constraints = [
            models.UniqueConstraint(
                fields=["category", "urgency", "stage"], name="time_limit_unique_stage"
            ),
            models.CheckConstraint(name="time_limit_positive", condition=models.Q(amount__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.get_urgency_display()} {self.get_stage_display()} {self.amount} {self.get_unit_display()}"

"""What the Open311 endpoint keeps of its own: the attributes (extra questions) of each
service, and a record of every request an integration submitted."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Datatype(models.TextChoices):
    """GeoReport v2 attribute datatypes."""

    STRING = "string", _("短文本")
    NUMBER = "number", _("数字")
    DATETIME = "datetime", _("日期时间")
    TEXT = "text", _("长文本")
    SINGLEVALUELIST = "singlevaluelist", _("单选")
    MULTIVALUELIST = "multivaluelist", _("多选")


LIST_DATATYPES = frozenset({Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST})


class ServiceAttributeQuerySet(models.QuerySet["ServiceAttribute"]):
    def active(self) -> ServiceAttributeQuerySet:
        return self.filter(is_active=True)

    def for_category(self, category_id: int, parent_id: int | None) -> ServiceAttributeQuerySet:
        """The attributes of a 小类: its own and those of its 大类."""
        ids = [category_id] + ([parent_id] if parent_id else [])
        return self.active().filter(category_id__in=ids)


class ServiceAttribute(models.Model):
    """An extra question a client asks when filing a service (GeoReport ``attribute``).

    Set on a 小类, or on a 大类 to apply to every 小类 below it.
    """

    category = models.ForeignKey(
        "cases.Category",
        verbose_name=_("类别"),
        on_delete=models.CASCADE,
        related_name="open311_attributes",
        help_text=_("小类；或大类，此时对其下所有小类生效"),
    )
    code = models.SlugField(_("编码"), max_length=64, help_text=_("提交时的 attribute[编码]"))
    description = models.CharField(_("问题"), max_length=300)
    datatype = models.CharField(_("数据类型"), max_length=16, choices=Datatype.choices)
    datatype_description = models.CharField(_("填写说明"), max_length=300, blank=True)
    variable = models.BooleanField(
        _("需要填写"), default=True, help_text=_("不勾选表示只是提示信息，不需要填写")
    )
    required = models.BooleanField(_("必填"), default=False)
    order = models.PositiveIntegerField(_("顺序"), default=1)
    is_active = models.BooleanField(_("启用"), default=True)

    objects = ServiceAttributeQuerySet.as_manager()

    class Meta:
        verbose_name = _("Open311 服务属性")
        verbose_name_plural = _("Open311 服务属性")
        ordering = ["category__code", "order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["category", "code"], name="o311_attribute_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.category.code} {self.code}"


class ServiceAttributeValue(models.Model):
    """One choice of a single- or multi-value list attribute."""

    attribute = models.ForeignKey(
        ServiceAttribute, verbose_name=_("属性"), on_delete=models.CASCADE, related_name="values"
    )
    key = models.SlugField(_("取值"), max_length=64)
    name = models.CharField(_("显示名称"), max_length=100)
    order = models.PositiveIntegerField(_("顺序"), default=1)

    class Meta:
        verbose_name = _("可选值")
        verbose_name_plural = _("可选值")
        ordering = ["order", "key"]
        constraints = [
            models.UniqueConstraint(fields=["attribute", "key"], name="o311_value_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.name}"


class SubmissionState(models.TextChoices):
    PENDING = "pending", _("待建案")
    TAKEN = "taken", _("已建案")
    REFUSED = "refused", _("已拒绝")


class Submission(models.Model):
    """A service request an integration POSTed, beside the case it became.

    Holds what the case has no place for (the client's attributes, ids and contact
    details) and, for deferred intake, the request until the worker takes it in.
    """

    case = models.OneToOneField(
        "cases.Case",
        verbose_name=_("案件"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="open311_submission",
    )
    integration = models.ForeignKey(
        "accounts.Integration",
        verbose_name=_("对接系统"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="open311_submissions",
    )
    jurisdiction = models.ForeignKey(
        "grids.Grid", verbose_name=_("辖区"), on_delete=models.PROTECT, related_name="+"
    )
    token = models.CharField(_("受理凭证"), max_length=32, unique=True)
    #: The integration's id for the request, or a digest of device and content: a
    #: retried POST finds the submission already made.
    dedupe_key = models.CharField(max_length=160, null=True, blank=True, unique=True)
    state = models.CharField(
        _("状态"), max_length=16, choices=SubmissionState.choices, default=SubmissionState.PENDING
    )
    service_code = models.CharField(_("服务编码"), max_length=32)
    attributes = models.JSONField(_("属性"), default=dict, blank=True)
    address_id = models.CharField(_("地址编号"), max_length=64, blank=True)
    media_url = models.URLField(_("媒体链接"), max_length=500, blank=True)
    email = models.CharField(_("电子邮箱"), max_length=254, blank=True)
    device_id = models.CharField(_("设备编号"), max_length=128, blank=True)
    account_id = models.CharField(_("账号编号"), max_length=128, blank=True)
    #: For deferred intake: the request as checked, until the worker takes it in.
    pending_data = models.JSONField(default=dict, blank=True, editable=False)
    error = models.TextField(_("拒绝原因"), blank=True)
    created_at = models.DateTimeField(_("提交时间"), auto_now_add=True)
    taken_at = models.DateTimeField(_("建案时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("Open311 提交记录")
        verbose_name_plural = _("Open311 提交记录")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="o311_taken_submission_has_case",
                condition=~Q(state="taken") | Q(case__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.token} {self.get_state_display()}"

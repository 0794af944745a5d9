"""Outbound webhooks: an integration's subscriptions, the outbox, and each attempt.

A ``Delivery`` is one event for one subscription: it is written in the same
transaction as the change it reports (``webhooks.outbox.record``), so a crash
never loses one, and the worker sends it until the receiver answers 2xx.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    """What a subscription may ask for: one per workflow action (past tense)."""

    CREATED = "case.created", _("登记")
    ACCEPTED = "case.accepted", _("受理")
    REJECTED = "case.rejected", _("不予受理")
    LOCATED = "case.located", _("人工定位")
    DISPATCHED = "case.dispatched", _("派遣")
    REDISPATCHED = "case.redispatched", _("改派")
    ACKNOWLEDGED = "case.acknowledged", _("签收")
    SENT_BACK = "case.sent_back", _("回退")
    EXTENSION_REQUESTED = "case.extension_requested", _("申请延期")
    EXTENSION_APPROVED = "case.extension_approved", _("批准延期")
    EXTENSION_DENIED = "case.extension_denied", _("驳回延期")
    PARKED = "case.parked", _("挂账")
    RESUMED = "case.resumed", _("恢复")
    HANDLED = "case.handled", _("处置反馈")
    SELF_HANDLED = "case.self_handled", _("自处理")
    VERIFIED = "case.verified", _("核查通过（未结案）")
    VERIFICATION_FAILED = "case.verification_failed", _("核查不通过")
    CLOSED = "case.closed", _("结案（含核查通过即结案）")
    RATED = "case.rated", _("回访评价")
    REOPENED = "case.reopened", _("重办")
    URGED = "case.urged", _("督办")
    VOID_REQUESTED = "case.void_requested", _("申请作废")
    VOIDED = "case.voided", _("作废")
    VOID_DENIED = "case.void_denied", _("驳回作废")
    MERGED = "case.merged", _("并单")
    OVERDUE = "case.overdue", _("超期")
    NOTE_ADDED = "case.note_added", _("备注或照片")


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def active(self) -> SubscriptionQuerySet:
        return self.filter(
            is_active=True,
            integration__is_active=True,
            integration__revoked_at__isnull=True,
        )


class Subscription(models.Model):
    """An integration's wish to be told about case events at ``target_url``.

    The secret signs every delivery (HMAC-SHA256), so it is stored as it is —
    like the signing secrets of Stripe or GitHub — and shown to administrators.
    Protect the database and its backups accordingly (docs/webhooks.md).
    """

    integration = models.ForeignKey(
        "accounts.Integration",
        verbose_name=_("对接系统"),
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
    )
    name = models.CharField(_("名称"), max_length=100, blank=True)
    target_url = models.URLField(_("推送地址"), max_length=500)
    secret = models.CharField(
        _("签名密钥"),
        max_length=100,
        help_text=_("用于 HMAC-SHA256 签名；以明文保存，请妥善保护数据库及其备份"),
    )
    #: A list of ``EventType`` values; empty means every event.
    event_types = models.JSONField(
        _("事件类型"), default=list, blank=True, help_text=_("不选表示全部事件")
    )
    grid = models.ForeignKey(
        "grids.Grid",
        verbose_name=_("网格范围"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("只推送该网格及其下级网格的案件；不选表示对接系统的全部辖区"),
    )
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("事件订阅")
        verbose_name_plural = _("事件订阅")
        ordering = ["integration__name", "id"]

    def __str__(self) -> str:
        return f"{self.integration} → {self.name or self.target_url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("待推送")
    DELIVERED = "delivered", _("已送达")
    FAILED = "failed", _("失败（已停止重试）")
    CANCELLED = "cancelled", _("已取消")


#: A delivery in one of these holds back the later events of its case.
BLOCKING = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class Delivery(models.Model):
    """One event for one subscription: the outbox row, then its delivery state."""

    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("订阅"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    case = models.ForeignKey(
        "cases.Case", verbose_name=_("案件"), on_delete=models.CASCADE, related_name="+"
    )
    case_event = models.ForeignKey(
        "cases.CaseEvent",
        verbose_name=_("案件事件"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: Stable across retries and replays: receivers dedupe on it.
    event_id = models.CharField(_("事件编号"), max_length=40, db_index=True)
    event_type = models.CharField(_("事件类型"), max_length=40, choices=EventType.choices)
    occurred_at = models.DateTimeField(_("发生时间"))
    #: What the case looked like when the event happened (no personal data).
    snapshot = models.JSONField(default=dict)
    #: The body as first sent; retries and replays send exactly these bytes.
    body = models.TextField(blank=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试"), default=timezone.now)
    first_attempt_at = models.DateTimeField(_("首次尝试"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("最近尝试"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    last_error = models.CharField(_("最近错误"), max_length=500, blank=True)
    #: A worker holds the delivery until then; a worker that died lets it go.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("推送记录")
        verbose_name_plural = _("推送记录")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
            models.Index(fields=["subscription", "case", "id"], name="webhook_case_order"),
            # The clean-up finds old delivered ones (webhooks.retention).
            models.Index(fields=["status", "delivered_at"], name="webhook_delivered"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.subscription_id}"


class Attempt(models.Model):
    """One POST of a delivery: when, how it went, what the receiver said."""

    delivery = models.ForeignKey(
        Delivery, verbose_name=_("推送记录"), on_delete=models.CASCADE, related_name="log"
    )
    at = models.DateTimeField(_("时间"))
    status_code = models.PositiveSmallIntegerField(_("状态码"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("耗时（毫秒）"))
    ok = models.BooleanField(_("成功"), default=False)
    error = models.CharField(_("错误"), max_length=500, blank=True)
    response_excerpt = models.CharField(_("响应摘录"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("推送尝试")
        verbose_name_plural = _("推送尝试")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error[:40]}"

"""A case (案卷 / 工单), its append-only event log and its stage deadlines."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Case as SqlCase
from django.db.models import DateTimeField, Exists, F, IntegerField, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.models.category import Category, RequestType, Stage, Urgency
from civicgrid.cases.models.workcalendar import TimeUnit
from civicgrid.grids.models import Grid


class Status(models.TextChoices):
    NEW = "new", _("待受理")
    REJECTED = "rejected", _("不予受理")
    FILED = "filed", _("待派遣")
    DISPATCHED = "dispatched", _("待签收")
    IN_PROGRESS = "in_progress", _("处置中")
    RETURNED = "returned", _("已回退")
    HANDLED = "handled", _("待核查")
    CLOSED = "closed", _("已结案")
    PARKED = "parked", _("挂账")
    VOIDED = "voided", _("已作废")
    MERGED = "merged", _("已并单")


#: Statuses in which nothing more happens to a case (but a follow-up or a reopen).
FINAL_STATUSES = frozenset({Status.REJECTED, Status.CLOSED, Status.VOIDED, Status.MERGED})
OPEN_STATUSES = frozenset(set(Status) - FINAL_STATUSES)


class Channel(models.TextChoices):
    HOTLINE = "hotline", _("12345 热线")
    GRID_WORKER = "grid_worker", _("网格员上报")
    WEB = "web", _("市民网页")
    API = "api", _("接口")
    CAMERA = "camera", _("视频告警")
    IMPORT = "import", _("批量导入")


#: Where a case without a running deadline sorts among deadlines ("urgent first").
NO_DEADLINE = datetime(3000, 1, 1, tzinfo=UTC)


def urgency_rank() -> SqlCase:
    """特急 0, 紧急 1, 一般 2: the first key of "most urgent, first due first". The same
    expression is indexed (``case_urgent_order``), so keep the two together."""
    return SqlCase(
        When(urgency=Urgency.EMERGENCY, then=Value(0)),
        When(urgency=Urgency.URGENT, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def due_key() -> Coalesce:
    """The running stage's deadline, ``NO_DEADLINE`` when none runs: the second key."""
    return Coalesce("due_at", Value(NO_DEADLINE, output_field=DateTimeField()))


class CaseQuerySet(models.QuerySet["Case"]):
    def open(self) -> CaseQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def in_subtree(self, root: Grid) -> CaseQuerySet:
        return self.filter(grid_path__startswith=root.path)

    def for_unit(self, unit_id: int) -> CaseQuerySet:
        """Cases the unit leads or assists (the assisting ones through ``EXISTS``, not a
        join: no duplicate rows, so no ``DISTINCT``)."""
        return self.filter(unit_q([unit_id]))

    def overdue(self) -> CaseQuerySet:
        return self.filter(is_overdue=True)


def unit_q(unit_ids: list[int]) -> Q:
    """Cases one of ``unit_ids`` leads or assists."""
    assisting = Case.assisting_units.through.objects.filter(
        case_id=OuterRef("pk"), handlingunit_id__in=unit_ids
    )
    return Q(lead_unit_id__in=unit_ids) | Q(Exists(assisting))


class Case(models.Model):
    # Unique through ``Meta.constraints`` rather than ``unique=True``, and the foreign
    # keys and the status without an index of their own: on PostgreSQL ``unique=True``
    # and ``db_index=True`` on a text column add a second, ``varchar_pattern_ops``
    # index for ``LIKE``, which nothing asks of these columns, and the composite indexes
    # below begin with the category, the lead unit and the status. Seven indexes fewer
    # to write on every intake, transition and import (migration 0007).
    number = models.CharField(_("案件编号"), max_length=32)
    tracking_code = models.CharField(_("查询码"), max_length=16)
    channel = models.CharField(_("来源渠道"), max_length=16, choices=Channel.choices)
    request_type = models.CharField(
        _("诉求类型"), max_length=16, choices=RequestType.choices, blank=True
    )
    category = models.ForeignKey(
        Category,
        verbose_name=_("类别"),
        on_delete=models.PROTECT,
        related_name="cases",
        db_index=False,
    )
    urgency = models.CharField(
        _("紧急程度"), max_length=16, choices=Urgency.choices, default=Urgency.NORMAL
    )
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.NEW)
    #: The status to go back to when a parked case resumes.
    status_before_park = models.CharField(max_length=16, choices=Status.choices, blank=True)
    title = models.CharField(_("标题"), max_length=200, blank=True)
    description = models.TextField(_("问题描述"))
    address = models.CharField(_("地址"), max_length=300, blank=True)
    lon = models.FloatField(_("经度"), null=True, blank=True)
    lat = models.FloatField(_("纬度"), null=True, blank=True)
    input_crs = models.CharField(_("原始坐标系"), max_length=16, blank=True)
    grid = models.ForeignKey(
        Grid,
        verbose_name=_("所在网格"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cases",
    )
    #: The grid's materialised path, copied so that subtree filters need no join.
    grid_path = models.CharField(max_length=255, blank=True, db_index=True, editable=False)
    needs_location = models.BooleanField(_("待人工定位"), default=False)
    requester_name = models.CharField(_("诉求人"), max_length=50, blank=True)
    requester_phone = models.CharField(_("联系电话"), max_length=30, blank=True)
    is_confidential = models.BooleanField(_("要求保密"), default=False)
    external_id = models.CharField(_("外部编号"), max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    suggested_unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("建议责任单位"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lead_unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("主办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lead_cases",
        db_index=False,
    )
    assisting_units = models.ManyToManyField(
        "grids.HandlingUnit",
        verbose_name=_("协办单位"),
        blank=True,
        related_name="assisting_cases",
    )
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("并入案件"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_cases",
    )
    result = models.TextField(_("处置结果"), blank=True)
    rework_count = models.PositiveIntegerField(_("返工次数"), default=0)
    reopen_count = models.PositiveIntegerField(_("重办次数"), default=0)
    return_count = models.PositiveIntegerField(_("回退次数"), default=0)
    urge_count = models.PositiveIntegerField(_("督办次数"), default=0)
    satisfaction = models.PositiveSmallIntegerField(_("满意度"), null=True, blank=True)
    is_overdue = models.BooleanField(_("已超期"), default=False, db_index=True)
    #: The deadline of the stage the case is in now (copied from its open deadline).
    due_at = models.DateTimeField(_("当前环节时限"), null=True, blank=True, db_index=True)
    #: Optimistic lock: every transition moves it; a stale writer loses.
    version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("登记人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    received_at = models.DateTimeField(_("接收时间"), default=timezone.now, db_index=True)
    closed_at = models.DateTimeField(_("结案时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        verbose_name = _("案件")
        verbose_name_plural = _("案件")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="case_unique_number"),
            models.UniqueConstraint(fields=["tracking_code"], name="case_unique_tracking_code"),
            models.UniqueConstraint(fields=["idempotency_key"], name="case_unique_idempotency_key"),
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="case_unique_external_id_per_channel",
            ),
            models.CheckConstraint(
                name="case_satisfaction_five_levels",
                condition=Q(satisfaction__isnull=True)
                | Q(satisfaction__gte=1, satisfaction__lte=5),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            models.Index(fields=["category", "received_at"]),
            models.Index(fields=["lead_unit", "status"]),
            # "Most urgent, first due first" (selectors.URGENT), walked in order.
            models.Index(
                urgency_rank(), due_key(), F("received_at"), F("id"), name="case_urgent_order"
            ),
            # The free-text search matches an external id exactly (the unique
            # constraint's index begins with the channel).
            models.Index(
                fields=["external_id"], condition=~Q(external_id=""), name="case_external_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title or self.category}"


class Action(models.TextChoices):
    CREATE = "create", _("登记")
    ACCEPT = "accept", _("受理")
    REJECT = "reject", _("不予受理")
    LOCATE = "locate", _("人工定位")
    DISPATCH = "dispatch", _("派遣")
    ACKNOWLEDGE = "acknowledge", _("签收")
    SEND_BACK = "send_back", _("回退")
    REDISPATCH = "redispatch", _("改派")
    REQUEST_EXTENSION = "request_extension", _("申请延期")
    APPROVE_EXTENSION = "approve_extension", _("批准延期")
    DENY_EXTENSION = "deny_extension", _("驳回延期")
    PARK = "park", _("挂账")
    RESUME = "resume", _("恢复")
    HANDLE = "handle", _("处置反馈")
    VERIFY_PASS = "verify_pass", _("核查通过")
    VERIFY_FAIL = "verify_fail", _("核查不通过")
    CLOSE = "close", _("结案")
    FOLLOW_UP = "follow_up", _("回访")
    REOPEN = "reopen", _("重办")
    URGE = "urge", _("督办")
    REQUEST_VOID = "request_void", _("申请作废")
    APPROVE_VOID = "approve_void", _("批准作废")
    DENY_VOID = "deny_void", _("驳回作废")
    MERGE = "merge", _("并单")
    SELF_HANDLE = "self_handle", _("自处理")
    OVERDUE = "overdue", _("超期")
    NOTE = "note", _("备注")


class CaseEvent(models.Model):
    """One row per thing that happened to a case; never updated, never deleted."""

    # No index of its own: the (case, at) index below begins with it.
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events", db_index=False)
    action = models.CharField(_("动作"), max_length=32, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_role = models.CharField(_("操作角色"), max_length=32, blank=True)
    actor_unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("操作单位"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    from_status = models.CharField(_("原状态"), max_length=16, choices=Status.choices, blank=True)
    to_status = models.CharField(_("新状态"), max_length=16, choices=Status.choices, blank=True)
    reason = models.TextField(_("理由/说明"), blank=True)
    #: Whether citizens following the case may see this event (and its reason).
    is_public = models.BooleanField(_("公开"), default=False)
    payload = models.JSONField(_("附加数据"), default=dict, blank=True)

    class Meta:
        verbose_name = _("案件事件")
        verbose_name_plural = _("案件事件")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["case", "at"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.action} {self.at:%Y-%m-%d %H:%M}"


class Deadline(models.Model):
    """The time limit of one stage of one case; the sweep marks the late ones."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="deadlines")
    stage = models.CharField(_("环节"), max_length=16, choices=Stage.choices)
    started_at = models.DateTimeField(_("开始时间"))
    due_at = models.DateTimeField(_("时限"), db_index=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    #: Set by the sweep (conditional update), so it fires once per deadline.
    overdue_at = models.DateTimeField(_("标记超期时间"), null=True, blank=True)
    paused_at = models.DateTimeField(_("挂起时间"), null=True, blank=True)
    amount = models.DecimalField(_("时限"), max_digits=7, decimal_places=2)
    unit = models.CharField(_("计时单位"), max_length=16, choices=TimeUnit.choices)

    class Meta:
        verbose_name = _("环节时限")
        verbose_name_plural = _("环节时限")
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(finished_at__isnull=True, overdue_at__isnull=True),
                name="deadline_open_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.stage} {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def met(self) -> bool | None:
        """Whether the stage finished in time; ``None`` while it runs."""
        if self.finished_at is None:
            return None
        return self.finished_at <= self.due_at


class ApprovalKind(models.TextChoices):
    EXTENSION = "extension", _("延期")
    VOID = "void", _("作废")
    PARK = "park", _("挂账")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("待审批")
    APPROVED = "approved", _("已批准")
    DENIED = "denied", _("已驳回")


class Approval(models.Model):
    """A request a supervisor decides: extension, void, park."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="approvals")
    kind = models.CharField(_("类型"), max_length=16, choices=ApprovalKind.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    reason = models.TextField(_("申请理由"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    #: For extensions: how much more time, in the stage's unit.
    extra_amount = models.DecimalField(
        _("延长时限"), max_digits=7, decimal_places=2, null=True, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    decision_note = models.TextField(_("审批意见"), blank=True)

    class Meta:
        verbose_name = _("审批")
        verbose_name_plural = _("审批")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "kind"],
                condition=Q(status="pending"),
                name="approval_one_pending_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.get_kind_display()} {self.get_status_display()}"

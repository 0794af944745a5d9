"""Every write to a case: intake and one verb function per transition.

Each function checks role, scope and state against ``workflow.TRANSITIONS``,
moves the case with a conditional update on its version (so of two people
acting at once exactly one wins; the other gets ``CaseConflict``), appends an
event, closes the deadline of the stage it leaves and opens the next one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases import routing, workcalendar
from civicgrid.cases.access import roles_on_case
from civicgrid.cases.errors import CaseConflict, CaseError, CaseForbidden, IntakeError
from civicgrid.cases.models import (
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseEvent,
    Category,
    Channel,
    Deadline,
    RequestType,
    Stage,
    Status,
    TimeLimit,
    Urgency,
)
from civicgrid.cases.workflow import STAGE_OF_STATUS, TRANSITIONS
from civicgrid.grids import crs as crs_mod
from civicgrid.grids import locator
from civicgrid.grids.models import Grid, HandlingUnit

TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# -- intake ----------------------------------------------------------------------
@dataclass
class Intake:
    """What a channel knows about a new case."""

    channel: str
    category: Category
    description: str
    urgency: str = Urgency.NORMAL
    request_type: str = ""
    title: str = ""
    address: str = ""
    lon: float | None = None
    lat: float | None = None
    crs: str = crs_mod.WGS84
    requester_name: str = ""
    requester_phone: str = ""
    is_confidential: bool = False
    external_id: str = ""
    idempotency_key: str | None = None
    received_at: datetime | None = None


def _existing(data: Intake) -> Case | None:
    if data.external_id:
        found = Case.objects.filter(channel=data.channel, external_id=data.external_id).first()
        if found:
            return found
    if data.idempotency_key:
        return Case.objects.filter(idempotency_key=data.idempotency_key).first()
    return None


def _check_intake(data: Intake) -> None:
    if data.channel not in Channel.values:
        raise IntakeError(_("未知的来源渠道：%(c)s") % {"c": data.channel})
    if data.urgency not in Urgency.values:
        raise IntakeError(_("未知的紧急程度：%(u)s") % {"u": data.urgency})
    if data.request_type and data.request_type not in RequestType.values:
        raise IntakeError(_("未知的诉求类型：%(t)s") % {"t": data.request_type})
    if not data.description or not data.description.strip():
        raise IntakeError(_("请填写问题描述"))
    if data.category.parent_id is None:
        raise IntakeError(_("请选择小类，而不是大类“%(name)s”") % {"name": data.category.name})
    if not data.category.is_active:
        raise IntakeError(_("类别“%(name)s”已停用") % {"name": data.category.name})
    if (data.lon is None) != (data.lat is None):
        raise IntakeError(_("经度和纬度须同时提供"))


def _tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(10))


def create_case(*, data: Intake, actor: User | None = None) -> tuple[Case, bool]:
    """Take in a case from any channel. Returns the case and whether it is new.

    The same channel and external id, or the same idempotency key, returns the
    case already taken in. A point outside the jurisdiction is refused; a case
    without coordinates is kept for manual location.
    """
    _check_intake(data)
    existing = _existing(data)
    if existing is not None:
        return existing, False

    grid: Grid | None = None
    lon = lat = None
    if data.lon is not None and data.lat is not None:
        try:
            where = locator.locate(data.lon, data.lat, data.crs)
        except ValueError as exc:
            raise IntakeError(str(exc)) from exc
        if not where.inside or where.grid is None:
            raise IntakeError(
                _("位置 (%(lon)s, %(lat)s) 不在辖区内") % {"lon": data.lon, "lat": data.lat}
            )
        grid = Grid.objects.get(pk=where.grid.id)
        lon, lat = where.lon, where.lat

    received_at = data.received_at or timezone.now()
    worker_report = data.channel == Channel.GRID_WORKER and actor is not None and grid is not None
    status = Status.FILED if worker_report else Status.NEW
    suggestion = routing.suggest(category=data.category, grid=grid) if grid else None
    try:
        with transaction.atomic():
            case = Case.objects.create(
                number=f"T{secrets.token_hex(8)}",
                tracking_code=_tracking_code(),
                channel=data.channel,
                request_type=data.request_type,
                category=data.category,
                urgency=data.urgency,
                status=status,
                title=data.title.strip()[:200],
                description=data.description.strip(),
                address=data.address.strip(),
                lon=lon,
                lat=lat,
                input_crs=crs_mod.normalize(data.crs) if lon is not None else "",
                grid=grid,
                grid_path=grid.path if grid else "",
                needs_location=grid is None,
                requester_name=data.requester_name.strip(),
                requester_phone=data.requester_phone.strip(),
                is_confidential=data.is_confidential,
                external_id=data.external_id.strip(),
                idempotency_key=data.idempotency_key or None,
                suggested_unit=suggestion.lead if suggestion else None,
                created_by=actor,
                received_at=received_at,
            )
            case.number = f"{timezone.localtime(received_at):%Y%m%d}{case.pk:07d}"
            Case.objects.filter(pk=case.pk).update(number=case.number)
            _event(
                case,
                action=Action.CREATE,
                actor=actor,
                role="",
                to_status=status,
                at=received_at,
                public=True,
                payload={"channel": data.channel},
            )
            _open_stage(case, status, received_at)
    except IntegrityError:
        # Two requests with the same external id or key raced; the other won.
        existing = _existing(data)
        if existing is None:
            raise
        return existing, False
    return case, True


# -- the transition engine -------------------------------------------------------
def _event(
    case: Case,
    *,
    action: str,
    actor: User | None,
    role: str,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    at: datetime | None = None,
    public: bool = False,
    payload: dict[str, Any] | None = None,
    unit: HandlingUnit | None = None,
) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case,
        action=action,
        actor=actor,
        actor_role=role,
        actor_unit=unit,
        at=at or timezone.now(),
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        is_public=public,
        payload=payload or {},
    )


def _limit(case: Case, stage: str) -> tuple[Decimal, str]:
    """The time limit of ``stage`` for the case's category and urgency."""
    for category_id in (case.category_id, case.category.parent_id):
        if category_id is None:
            continue
        found = (
            TimeLimit.objects.filter(category_id=category_id, urgency=case.urgency, stage=stage)
            .values_list("amount", "unit")
            .first()
        )
        if found:
            return Decimal(found[0]), found[1]
    defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
    amount, unit = defaults[case.urgency][stage]
    return Decimal(str(amount)), unit


def _open_stage(case: Case, status: str, at: datetime, stage: str | None = None) -> None:
    stage = stage or STAGE_OF_STATUS.get(status)
    if stage is None:
        Case.objects.filter(pk=case.pk).update(due_at=None)
        case.due_at = None
        return
    amount, unit = _limit(case, stage)
    due = workcalendar.due_at(at, amount, unit)
    Deadline.objects.create(
        case=case, stage=stage, started_at=at, due_at=due, amount=amount, unit=unit
    )
    Case.objects.filter(pk=case.pk).update(due_at=due)
    case.due_at = due


def _finish_stage(case: Case, at: datetime) -> None:
    Deadline.objects.filter(case=case, finished_at__isnull=True).update(finished_at=at)


def _acting_role(actor: User, case: Case, action: str) -> str:
    spec = TRANSITIONS[action]
    held = roles_on_case(actor, case) & spec.roles
    if not held:
        raise CaseForbidden(
            _("您无权对案件 %(n)s 执行“%(a)s”") % {"n": case.number, "a": Action(action).label}
        )
    # Prefer the most specific role for the record.
    for role in Role.values:
        if role in held:
            return role
    return sorted(held)[0]


def _check(case: Case, action: str, actor: User, reason: str) -> str:
    spec = TRANSITIONS[action]
    role = _acting_role(actor, case, action)
    if case.status not in spec.sources:
        raise CaseError(
            _("案件 %(n)s 当前状态为“%(s)s”，不能执行“%(a)s”")
            % {"n": case.number, "s": Status(case.status).label, "a": Action(action).label}
        )
    if spec.reason_required and not reason.strip():
        raise CaseError(_("“%(a)s”须填写理由") % {"a": Action(action).label})
    return role


def _move(
    case: Case,
    *,
    action: str,
    actor: User,
    role: str,
    to_status: str | None,
    reason: str = "",
    public: bool = False,
    payload: dict[str, Any] | None = None,
    unit: HandlingUnit | None = None,
    updates: dict[str, Any] | None = None,
    stages: bool = True,
) -> CaseEvent:
    """Apply one transition inside the caller's transaction."""
    now = timezone.now()
    from_status = case.status
    target = to_status or from_status
    fields: dict[str, Any] = dict(updates or {})
    fields["status"] = target
    changed = Case.objects.filter(pk=case.pk, version=case.version, status=from_status).update(
        version=F("version") + 1, updated_at=now, **fields
    )
    if not changed:
        raise CaseConflict(_("案件 %(n)s 刚被他人处理，请刷新后重试") % {"n": case.number})
    for name, value in fields.items():
        setattr(case, name, value)
    case.version += 1
    event = _event(
        case,
        action=action,
        actor=actor,
        role=role,
        from_status=from_status,
        to_status=target,
        reason=reason.strip(),
        at=now,
        public=public,
        payload=payload,
        unit=unit,
    )
    if stages and target != from_status:
        # Leaving a stage closes its deadline; entering one opens the next. A
        # send-back and a re-dispatch are both the dispatch stage, but a new round.
        _finish_stage(case, now)
        _open_stage(case, target, now)
    return event


def _reload(case: Case) -> Case:
    case.refresh_from_db()
    return case


# -- transitions -------------------------------------------------------------------
def accept_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = _check(case, Action.ACCEPT, actor, note)
    if case.grid_id is None:
        raise CaseError(_("案件 %(n)s 尚未定位到网格，请先定位") % {"n": case.number})
    with transaction.atomic():
        _move(
            case,
            action=Action.ACCEPT,
            actor=actor,
            role=role,
            to_status=Status.FILED,
            reason=note,
            public=True,
        )
    return _reload(case)


def reject_case(*, case: Case, actor: User, reason: str) -> Case:
    role = _check(case, Action.REJECT, actor, reason)
    with transaction.atomic():
        _move(
            case,
            action=Action.REJECT,
            actor=actor,
            role=role,
            to_status=Status.REJECTED,
            reason=reason,
            public=True,
        )
    return _reload(case)


def locate_case(
    *, case: Case, actor: User, lon: float, lat: float, crs: str = crs_mod.WGS84
) -> Case:
    """Place a case that came without coordinates (or with wrong ones) on the grid."""
    role = _check(case, Action.LOCATE, actor, "")
    where = locator.locate(lon, lat, crs)
    if not where.inside or where.grid is None:
        raise CaseError(_("位置 (%(lon)s, %(lat)s) 不在辖区内") % {"lon": lon, "lat": lat})
    grid = Grid.objects.get(pk=where.grid.id)
    suggestion = routing.suggest(category=case.category, grid=grid)
    with transaction.atomic():
        _move(
            case,
            action=Action.LOCATE,
            actor=actor,
            role=role,
            to_status=None,
            payload={"grid": grid.code, "lon": where.lon, "lat": where.lat},
            updates={
                "grid": grid,
                "grid_path": grid.path,
                "lon": where.lon,
                "lat": where.lat,
                "input_crs": crs_mod.normalize(crs),
                "needs_location": False,
                "suggested_unit": suggestion.lead if suggestion else None,
            },
        )
    return _reload(case)


def _check_units(lead: HandlingUnit, assisting: list[HandlingUnit]) -> None:
    if not lead.is_active:
        raise CaseError(_("单位“%(u)s”已停用，不能派遣") % {"u": lead.name})
    for unit in assisting:
        if not unit.is_active:
            raise CaseError(_("单位“%(u)s”已停用，不能派遣") % {"u": unit.name})
        if unit.pk == lead.pk:
            raise CaseError(_("主办单位不能同时是协办单位"))


def dispatch_case(
    *,
    case: Case,
    actor: User,
    unit: HandlingUnit,
    assisting: list[HandlingUnit] | None = None,
    note: str = "",
) -> Case:
    action = Action.REDISPATCH if case.status == Status.RETURNED else Action.DISPATCH
    role = _check(case, action, actor, note)
    assisting = assisting or []
    _check_units(unit, assisting)
    with transaction.atomic():
        _move(
            case,
            action=action,
            actor=actor,
            role=role,
            to_status=Status.DISPATCHED,
            reason=note,
            public=True,
            unit=unit,
            payload={
                "lead_unit": unit.pk,
                "assisting_units": [u.pk for u in assisting],
                "suggested_unit": case.suggested_unit_id,
                "followed_suggestion": case.suggested_unit_id == unit.pk,
            },
            updates={"lead_unit": unit},
        )
        case.assisting_units.set(assisting)
    return _reload(case)


def acknowledge_case(*, case: Case, actor: User) -> Case:
    role = _check(case, Action.ACKNOWLEDGE, actor, "")
    with transaction.atomic():
        _move(
            case,
            action=Action.ACKNOWLEDGE,
            actor=actor,
            role=role,
            to_status=Status.IN_PROGRESS,
            public=True,
            unit=case.lead_unit,
        )
    return _reload(case)


def send_back_case(*, case: Case, actor: User, reason: str) -> Case:
    role = _check(case, Action.SEND_BACK, actor, reason)
    with transaction.atomic():
        _move(
            case,
            action=Action.SEND_BACK,
            actor=actor,
            role=role,
            to_status=Status.RETURNED,
            reason=reason,
            unit=case.lead_unit,
            updates={"return_count": F("return_count") + 1},
        )
    return _reload(case)


def request_extension(*, case: Case, actor: User, reason: str, extra_amount: Decimal) -> Approval:
    role = _check(case, Action.REQUEST_EXTENSION, actor, reason)
    if extra_amount <= 0:
        raise CaseError(_("延长时限须大于零"))
    open_deadline = case.deadlines.filter(finished_at__isnull=True).first()
    if open_deadline and open_deadline.due_at < timezone.now():
        raise CaseError(_("处置时限已过，须在到期前申请延期"))
    with transaction.atomic():
        try:
            with transaction.atomic():
                approval = Approval.objects.create(
                    case=case,
                    kind=ApprovalKind.EXTENSION,
                    reason=reason.strip(),
                    requested_by=actor,
                    extra_amount=extra_amount,
                )
        except IntegrityError as exc:
            raise CaseError(_("已有待审批的延期申请")) from exc
        _move(
            case,
            action=Action.REQUEST_EXTENSION,
            actor=actor,
            role=role,
            to_status=None,
            reason=reason,
            unit=case.lead_unit,
            payload={"approval": approval.pk, "extra_amount": str(extra_amount)},
        )
    return approval


def _pending(case: Case, kind: str) -> Approval:
    approval = case.approvals.filter(kind=kind, status=ApprovalStatus.PENDING).first()
    if approval is None:
        raise CaseError(_("没有待审批的%(k)s申请") % {"k": ApprovalKind(kind).label})
    return approval


def decide_extension(*, case: Case, actor: User, approve: bool, note: str = "") -> Case:
    action = Action.APPROVE_EXTENSION if approve else Action.DENY_EXTENSION
    role = _check(case, action, actor, note)
    approval = _pending(case, ApprovalKind.EXTENSION)
    now = timezone.now()
    with transaction.atomic():
        updated = Approval.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(
            status=ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED,
            decided_by=actor,
            decided_at=now,
            decision_note=note.strip(),
        )
        if not updated:
            raise CaseConflict(_("该申请刚被他人审批"))
        payload: dict[str, Any] = {"approval": approval.pk}
        if approve:
            deadline = case.deadlines.filter(finished_at__isnull=True).first()
            if deadline is not None and approval.extra_amount is not None:
                new_due = workcalendar.due_at(deadline.due_at, approval.extra_amount, deadline.unit)
                Deadline.objects.filter(pk=deadline.pk).update(
                    due_at=new_due, amount=deadline.amount + approval.extra_amount
                )
                payload.update(
                    {"old_due": deadline.due_at.isoformat(), "new_due": new_due.isoformat()}
                )
                _move(
                    case,
                    action=action,
                    actor=actor,
                    role=role,
                    to_status=None,
                    reason=note,
                    payload=payload,
                    updates={"due_at": new_due},
                )
                return _reload(case)
        _move(
            case,
            action=action,
            actor=actor,
            role=role,
            to_status=None,
            reason=note,
            payload=payload,
        )
    return _reload(case)


def park_case(*, case: Case, actor: User, reason: str) -> Case:
    role = _check(case, Action.PARK, actor, reason)
    now = timezone.now()
    with transaction.atomic():
        Deadline.objects.filter(case=case, finished_at__isnull=True).update(paused_at=now)
        _move(
            case,
            action=Action.PARK,
            actor=actor,
            role=role,
            to_status=Status.PARKED,
            reason=reason,
            updates={"status_before_park": case.status, "due_at": None},
            stages=False,
        )
    return _reload(case)


def resume_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = _check(case, Action.RESUME, actor, note)
    now = timezone.now()
    back_to = case.status_before_park or Status.FILED
    with transaction.atomic():
        new_due = None
        for deadline in Deadline.objects.filter(case=case, finished_at__isnull=True):
            if deadline.paused_at is None:
                continue
            new_due = workcalendar.shift_for_pause(
                deadline.due_at, deadline.paused_at, now, deadline.unit
            )
            Deadline.objects.filter(pk=deadline.pk).update(due_at=new_due, paused_at=None)
        _move(
            case,
            action=Action.RESUME,
            actor=actor,
            role=role,
            to_status=back_to,
            reason=note,
            updates={"status_before_park": "", "due_at": new_due},
            stages=False,
        )
    return _reload(case)


def handle_case(*, case: Case, actor: User, result: str) -> Case:
    """The unit reports back with its result (after-photos attach to the event)."""
    role = _check(case, Action.HANDLE, actor, result)
    if not result.strip():
        raise CaseError(_("请填写处置结果"))
    with transaction.atomic():
        _move(
            case,
            action=Action.HANDLE,
            actor=actor,
            role=role,
            to_status=Status.HANDLED,
            reason=result,
            public=True,
            unit=case.lead_unit,
            updates={"result": result.strip()},
        )
    return _reload(case)


def verify_case(*, case: Case, actor: User, passed: bool, note: str = "") -> Case:
    """A grid worker checks the result on site: pass closes (by rule), fail is rework."""
    if passed:
        role = _check(case, Action.VERIFY_PASS, actor, note)
        auto_close = settings.CIVICGRID_CLOSE_ON_VERIFY
        with transaction.atomic():
            _move(
                case,
                action=Action.VERIFY_PASS,
                actor=actor,
                role=role,
                to_status=Status.CLOSED if auto_close else None,
                reason=note,
                public=True,
                updates={"closed_at": timezone.now()} if auto_close else None,
            )
            if not auto_close:
                # Verified, waiting for a supervisor to close: the close stage runs.
                now = timezone.now()
                _finish_stage(case, now)
                _open_stage(case, case.status, now, stage=Stage.CLOSE)
        return _reload(case)
    role = _check(case, Action.VERIFY_FAIL, actor, note)
    with transaction.atomic():
        _move(
            case,
            action=Action.VERIFY_FAIL,
            actor=actor,
            role=role,
            to_status=Status.IN_PROGRESS,
            reason=note,
            updates={"rework_count": F("rework_count") + 1},
        )
    return _reload(case)


def close_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = _check(case, Action.CLOSE, actor, note)
    if not case.events.filter(action=Action.VERIFY_PASS).exists():
        raise CaseError(_("案件 %(n)s 尚未核查通过，不能结案") % {"n": case.number})
    with transaction.atomic():
        _move(
            case,
            action=Action.CLOSE,
            actor=actor,
            role=role,
            to_status=Status.CLOSED,
            reason=note,
            public=True,
            updates={"closed_at": timezone.now()},
        )
    return _reload(case)


def follow_up_case(*, case: Case, actor: User, satisfaction: int, note: str = "") -> Case:
    """Record the citizen's five-level satisfaction (5 非常满意 … 1 非常不满意)."""
    role = _check(case, Action.FOLLOW_UP, actor, note)
    if satisfaction not in range(1, 6):
        raise CaseError(_("满意度须为 1～5"))
    with transaction.atomic():
        _move(
            case,
            action=Action.FOLLOW_UP,
            actor=actor,
            role=role,
            to_status=None,
            reason=note,
            payload={"satisfaction": satisfaction},
            updates={"satisfaction": satisfaction},
        )
    return _reload(case)


def reopen_case(*, case: Case, actor: User, reason: str) -> Case:
    """重办: the citizen was not satisfied; the lead unit gets the case again."""
    role = _check(case, Action.REOPEN, actor, reason)
    if case.lead_unit_id is None:
        raise CaseError(_("案件 %(n)s 没有主办单位，不能重办") % {"n": case.number})
    with transaction.atomic():
        _move(
            case,
            action=Action.REOPEN,
            actor=actor,
            role=role,
            to_status=Status.DISPATCHED,
            reason=reason,
            public=True,
            updates={"reopen_count": F("reopen_count") + 1, "closed_at": None},
        )
    return _reload(case)


def urge_case(*, case: Case, actor: User, reason: str) -> Case:
    role = _check(case, Action.URGE, actor, reason)
    with transaction.atomic():
        _move(
            case,
            action=Action.URGE,
            actor=actor,
            role=role,
            to_status=None,
            reason=reason,
            updates={"urge_count": F("urge_count") + 1},
        )
    return _reload(case)


def request_void(*, case: Case, actor: User, reason: str) -> Approval:
    role = _check(case, Action.REQUEST_VOID, actor, reason)
    with transaction.atomic():
        try:
            with transaction.atomic():
                approval = Approval.objects.create(
                    case=case, kind=ApprovalKind.VOID, reason=reason.strip(), requested_by=actor
                )
        except IntegrityError as exc:
            raise CaseError(_("已有待审批的作废申请")) from exc
        _move(
            case,
            action=Action.REQUEST_VOID,
            actor=actor,
            role=role,
            to_status=None,
            reason=reason,
            payload={"approval": approval.pk},
        )
    return approval


def decide_void(*, case: Case, actor: User, approve: bool, note: str = "") -> Case:
    action = Action.APPROVE_VOID if approve else Action.DENY_VOID
    role = _check(case, action, actor, note)
    approval = _pending(case, ApprovalKind.VOID)
    with transaction.atomic():
        updated = Approval.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(
            status=ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED,
            decided_by=actor,
            decided_at=timezone.now(),
            decision_note=note.strip(),
        )
        if not updated:
            raise CaseConflict(_("该申请刚被他人审批"))
        _move(
            case,
            action=action,
            actor=actor,
            role=role,
            to_status=Status.VOIDED if approve else None,
            reason=note or approval.reason,
            payload={"approval": approval.pk},
        )
    return _reload(case)


def merge_case(*, case: Case, into: Case, actor: User, note: str = "") -> Case:
    """并单: ``case`` duplicates ``into``; it ends as merged, pointing at the original."""
    role = _check(case, Action.MERGE, actor, note)
    if into.pk == case.pk:
        raise CaseError(_("不能将案件并入自身"))
    if into.status in (Status.MERGED, Status.VOIDED, Status.REJECTED):
        raise CaseError(
            _("目标案件 %(n)s 状态为“%(s)s”，不能并入")
            % {"n": into.number, "s": into.get_status_display()}
        )
    with transaction.atomic():
        _move(
            case,
            action=Action.MERGE,
            actor=actor,
            role=role,
            to_status=Status.MERGED,
            reason=note,
            public=True,
            payload={"into": into.pk, "into_number": into.number},
            updates={"merged_into": into},
        )
        _event(
            into,
            action=Action.NOTE,
            actor=actor,
            role=role,
            reason=_("案件 %(n)s 已并入本案") % {"n": case.number},
            payload={"merged": case.pk},
        )
    return _reload(case)


def self_handle_case(*, data: Intake, actor: User, result: str) -> Case:
    """自处理: a grid worker fixed a small problem on the spot; it goes to verification."""
    if not result.strip():
        raise CaseError(_("请填写处置结果"))
    data.channel = Channel.GRID_WORKER
    with transaction.atomic():
        case, created = create_case(data=data, actor=actor)
        if not created:
            return case
        if Role.GRID_WORKER not in roles_on_case(actor, case):
            raise CaseForbidden(_("只有该网格的网格员可以自处理"))
        _move(
            case,
            action=Action.SELF_HANDLE,
            actor=actor,
            role=Role.GRID_WORKER,
            to_status=Status.HANDLED,
            reason=result,
            public=True,
            updates={"result": result.strip()},
        )
    return _reload(case)

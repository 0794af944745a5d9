"""One verb function per transition of ``workflow.TRANSITIONS``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import User
from civicgrid.cases import routing, workcalendar
from civicgrid.cases.attachments import ProcessedImage, Upload
from civicgrid.cases.errors import CaseConflict, CaseError
from civicgrid.cases.models import (
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    AttachmentKind,
    Case,
    CaseEvent,
    Deadline,
    Stage,
    Status,
)
from civicgrid.cases.services.attachments import attach_photos, process_photos
from civicgrid.cases.services.engine import (
    check,
    finish_stage,
    move,
    open_stage,
    record_event,
    reload,
)
from civicgrid.grids import crs as crs_mod
from civicgrid.grids import locator
from civicgrid.grids.models import Grid, HandlingUnit


def accept_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = check(case, Action.ACCEPT, actor, note)
    if case.grid_id is None:
        raise CaseError(_("案件 %(n)s 尚未定位到网格，请先定位") % {"n": case.number})
    with transaction.atomic():
        move(
            case,
            action=Action.ACCEPT,
            actor=actor,
            role=role,
            to_status=Status.FILED,
            reason=note,
            public=True,
        )
    return reload(case)


def reject_case(*, case: Case, actor: User, reason: str) -> Case:
    role = check(case, Action.REJECT, actor, reason)
    with transaction.atomic():
        move(
            case,
            action=Action.REJECT,
            actor=actor,
            role=role,
            to_status=Status.REJECTED,
            reason=reason,
            public=True,
        )
    return reload(case)


def locate_case(
    *, case: Case, actor: User, lon: float, lat: float, crs: str = crs_mod.WGS84
) -> Case:
    """Place a case that came without coordinates (or with wrong ones) on the grid."""
    role = check(case, Action.LOCATE, actor, "")
    where = locator.locate(lon, lat, crs)
    if not where.inside or where.grid is None:
        raise CaseError(_("位置 (%(lon)s, %(lat)s) 不在辖区内") % {"lon": lon, "lat": lat})
    grid = Grid.objects.get(pk=where.grid.id)
    suggestion = routing.suggest(category=case.category, grid=grid)
    with transaction.atomic():
        move(
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
    return reload(case)


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
    role = check(case, action, actor, note)
    assisting = assisting or []
    _check_units(unit, assisting)
    with transaction.atomic():
        move(
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
    return reload(case)


def acknowledge_case(*, case: Case, actor: User) -> Case:
    role = check(case, Action.ACKNOWLEDGE, actor, "")
    with transaction.atomic():
        move(
            case,
            action=Action.ACKNOWLEDGE,
            actor=actor,
            role=role,
            to_status=Status.IN_PROGRESS,
            public=True,
            unit=case.lead_unit,
        )
    return reload(case)


def send_back_case(*, case: Case, actor: User, reason: str) -> Case:
    role = check(case, Action.SEND_BACK, actor, reason)
    with transaction.atomic():
        move(
            case,
            action=Action.SEND_BACK,
            actor=actor,
            role=role,
            to_status=Status.RETURNED,
            reason=reason,
            unit=case.lead_unit,
            updates={"return_count": F("return_count") + 1},
        )
    return reload(case)


def request_extension(*, case: Case, actor: User, reason: str, extra_amount: Decimal) -> Approval:
    role = check(case, Action.REQUEST_EXTENSION, actor, reason)
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
        move(
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
    role = check(case, action, actor, note)
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
                move(
                    case,
                    action=action,
                    actor=actor,
                    role=role,
                    to_status=None,
                    reason=note,
                    payload=payload,
                    updates={"due_at": new_due},
                )
                return reload(case)
        move(
            case,
            action=action,
            actor=actor,
            role=role,
            to_status=None,
            reason=note,
            payload=payload,
        )
    return reload(case)


def park_case(*, case: Case, actor: User, reason: str) -> Case:
    role = check(case, Action.PARK, actor, reason)
    now = timezone.now()
    with transaction.atomic():
        Deadline.objects.filter(case=case, finished_at__isnull=True).update(paused_at=now)
        move(
            case,
            action=Action.PARK,
            actor=actor,
            role=role,
            to_status=Status.PARKED,
            reason=reason,
            updates={"status_before_park": case.status, "due_at": None},
            stages=False,
        )
    return reload(case)


def resume_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = check(case, Action.RESUME, actor, note)
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
        move(
            case,
            action=Action.RESUME,
            actor=actor,
            role=role,
            to_status=back_to,
            reason=note,
            updates={"status_before_park": "", "due_at": new_due},
            stages=False,
        )
    return reload(case)


def handle_case(*, case: Case, actor: User, result: str, photos: Sequence[Upload] = ()) -> Case:
    """The unit reports back with its result; ``photos`` are its after-photos, attached
    to the report's event (all or nothing: a bad photo refuses the report)."""
    role = check(case, Action.HANDLE, actor, result)
    if not result.strip():
        raise CaseError(_("请填写处置结果"))
    images = process_photos(photos)
    with transaction.atomic():
        event = move(
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
        if images:
            attach_photos(
                case=case, actor=actor, uploads=images, kind=AttachmentKind.AFTER, event=event
            )
    return reload(case)


def verify_case(
    *, case: Case, actor: User, passed: bool, note: str = "", photos: Sequence[Upload] = ()
) -> Case:
    """A grid worker checks the result on site: pass closes (by rule), fail is rework.
    ``photos`` (taken on site) attach to the verification event, all or nothing."""
    if passed:
        role = check(case, Action.VERIFY_PASS, actor, note)
        auto_close = settings.CIVICGRID_CLOSE_ON_VERIFY
        images = process_photos(photos)
        with transaction.atomic():
            event = move(
                case,
                action=Action.VERIFY_PASS,
                actor=actor,
                role=role,
                to_status=Status.CLOSED if auto_close else None,
                reason=note,
                public=True,
                updates={"closed_at": timezone.now()} if auto_close else None,
            )
            _attach_verification(case, actor, images, event)
            if not auto_close:
                # Verified, waiting for a supervisor to close: the close stage runs.
                now = timezone.now()
                finish_stage(case, now)
                open_stage(case, case.status, now, stage=Stage.CLOSE)
        return reload(case)
    role = check(case, Action.VERIFY_FAIL, actor, note)
    images = process_photos(photos)
    with transaction.atomic():
        event = move(
            case,
            action=Action.VERIFY_FAIL,
            actor=actor,
            role=role,
            to_status=Status.IN_PROGRESS,
            reason=note,
            updates={"rework_count": F("rework_count") + 1},
        )
        _attach_verification(case, actor, images, event)
    return reload(case)


def _attach_verification(
    case: Case, actor: User, images: list[ProcessedImage], event: CaseEvent
) -> None:
    if images:
        attach_photos(
            case=case, actor=actor, uploads=images, kind=AttachmentKind.VERIFICATION, event=event
        )


def close_case(*, case: Case, actor: User, note: str = "") -> Case:
    role = check(case, Action.CLOSE, actor, note)
    if not case.events.filter(action=Action.VERIFY_PASS).exists():
        raise CaseError(_("案件 %(n)s 尚未核查通过，不能结案") % {"n": case.number})
    with transaction.atomic():
        move(
            case,
            action=Action.CLOSE,
            actor=actor,
            role=role,
            to_status=Status.CLOSED,
            reason=note,
            public=True,
            updates={"closed_at": timezone.now()},
        )
    return reload(case)


def follow_up_case(*, case: Case, actor: User, satisfaction: int, note: str = "") -> Case:
    """Record the citizen's five-level satisfaction (5 非常满意 … 1 非常不满意)."""
    role = check(case, Action.FOLLOW_UP, actor, note)
    if satisfaction not in range(1, 6):
        raise CaseError(_("满意度须为 1～5"))
    with transaction.atomic():
        move(
            case,
            action=Action.FOLLOW_UP,
            actor=actor,
            role=role,
            to_status=None,
            reason=note,
            payload={"satisfaction": satisfaction},
            updates={"satisfaction": satisfaction},
        )
    return reload(case)


def reopen_case(*, case: Case, actor: User, reason: str) -> Case:
    """重办: the citizen was not satisfied; the lead unit gets the case again."""
    role = check(case, Action.REOPEN, actor, reason)
    if case.lead_unit_id is None:
        raise CaseError(_("案件 %(n)s 没有主办单位，不能重办") % {"n": case.number})
    with transaction.atomic():
        move(
            case,
            action=Action.REOPEN,
            actor=actor,
            role=role,
            to_status=Status.DISPATCHED,
            reason=reason,
            public=True,
            updates={"reopen_count": F("reopen_count") + 1, "closed_at": None},
        )
    return reload(case)


def urge_case(*, case: Case, actor: User, reason: str) -> Case:
    role = check(case, Action.URGE, actor, reason)
    with transaction.atomic():
        move(
            case,
            action=Action.URGE,
            actor=actor,
            role=role,
            to_status=None,
            reason=reason,
            updates={"urge_count": F("urge_count") + 1},
        )
    return reload(case)


def request_void(*, case: Case, actor: User, reason: str) -> Approval:
    role = check(case, Action.REQUEST_VOID, actor, reason)
    with transaction.atomic():
        try:
            with transaction.atomic():
                approval = Approval.objects.create(
                    case=case, kind=ApprovalKind.VOID, reason=reason.strip(), requested_by=actor
                )
        except IntegrityError as exc:
            raise CaseError(_("已有待审批的作废申请")) from exc
        move(
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
    role = check(case, action, actor, note)
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
        move(
            case,
            action=action,
            actor=actor,
            role=role,
            to_status=Status.VOIDED if approve else None,
            reason=note or approval.reason,
            payload={"approval": approval.pk},
        )
    return reload(case)


def merge_case(*, case: Case, into: Case, actor: User, note: str = "") -> Case:
    """并单: ``case`` duplicates ``into``; it ends as merged, pointing at the original."""
    role = check(case, Action.MERGE, actor, note)
    if into.pk == case.pk:
        raise CaseError(_("不能将案件并入自身"))
    if into.status in (Status.MERGED, Status.VOIDED, Status.REJECTED):
        raise CaseError(
            _("目标案件 %(n)s 状态为“%(s)s”，不能并入")
            % {"n": into.number, "s": into.get_status_display()}
        )
    with transaction.atomic():
        move(
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
        record_event(
            into,
            action=Action.NOTE,
            actor=actor,
            role=role,
            reason=_("案件 %(n)s 已并入本案") % {"n": case.number},
            payload={"merged": case.pk},
        )
    return reload(case)

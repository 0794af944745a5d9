"""The transition engine every service function goes through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases import workcalendar
from civicgrid.cases.access import roles_on_case
from civicgrid.cases.errors import CaseConflict, CaseError, CaseForbidden
from civicgrid.cases.models import (
    Action,
    Case,
    CaseEvent,
    Deadline,
    Status,
    TimeLimit,
)
from civicgrid.cases.workflow import STAGE_OF_STATUS, TRANSITIONS
from civicgrid.grids.models import HandlingUnit
from civicgrid.stats import rollups
from civicgrid.webhooks import outbox


def record_event(
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
    event = CaseEvent.objects.create(
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
    outbox.record(case, event)  # webhooks: in this transaction, so never lost
    return event


def time_limit(case: Case, stage: str) -> tuple[Decimal, str]:
    """The time limit of ``stage`` for the case's category and urgency: the
    subcategory's, else its major category's (one query for both), else the default."""
    ids = [i for i in (case.category_id, case.category.parent_id) if i is not None]
    found = dict(
        (row[0], row[1:])
        for row in TimeLimit.objects.filter(
            category_id__in=ids, urgency=case.urgency, stage=stage
        ).values_list("category_id", "amount", "unit")
    )
    for category_id in ids:
        if category_id in found:
            amount, unit = found[category_id]
            return Decimal(amount), unit
    defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
    amount, unit = defaults[case.urgency][stage]
    return Decimal(str(amount)), unit


@dataclass(frozen=True)
class StageStart:
    """The deadline a stage entered at ``at`` gets (before it is written)."""

    stage: str
    at: datetime
    amount: Decimal
    unit: str
    due: datetime

    def create(self, case: Case) -> Deadline:
        return Deadline.objects.create(
            case=case,
            stage=self.stage,
            started_at=self.at,
            due_at=self.due,
            amount=self.amount,
            unit=self.unit,
        )


def stage_start(
    case: Case, status: str, at: datetime, stage: str | None = None
) -> StageStart | None:
    """The deadline of the stage ``status`` enters (``None``: a status without one),
    computed without writing: callers write the case's ``due_at`` with their own
    INSERT or UPDATE of the case and then ``create`` the deadline."""
    stage = stage or STAGE_OF_STATUS.get(status)
    if stage is None:
        return None
    amount, unit = time_limit(case, stage)
    return StageStart(stage, at, amount, unit, workcalendar.due_at(at, amount, unit))


def open_stage(case: Case, status: str, at: datetime, stage: str | None = None) -> None:
    start = stage_start(case, status, at, stage)
    if start is None:
        Case.objects.filter(pk=case.pk).update(due_at=None)
        case.due_at = None
        return
    start.create(case)
    Case.objects.filter(pk=case.pk).update(due_at=start.due)
    case.due_at = start.due


def finish_stage(case: Case, at: datetime) -> None:
    Deadline.objects.filter(case=case, finished_at__isnull=True).update(finished_at=at)


def acting_role(actor: User, case: Case, action: str) -> str:
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


def check(case: Case, action: str, actor: User, reason: str) -> str:
    spec = TRANSITIONS[action]
    role = acting_role(actor, case, action)
    if case.status not in spec.sources:
        raise CaseError(
            _("案件 %(n)s 当前状态为“%(s)s”，不能执行“%(a)s”")
            % {"n": case.number, "s": Status(case.status).label, "a": Action(action).label}
        )
    if spec.reason_required and not reason.strip():
        raise CaseError(_("“%(a)s”须填写理由") % {"a": Action(action).label})
    return role


def move(
    case: Case,
    *,
    action: str,
    actor: User | None,
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
    # Leaving a stage closes its deadline; entering one opens the next. A send-back and
    # a re-dispatch are both the dispatch stage, but a new round. The next stage's due
    # time goes into the conditional UPDATE itself (no second UPDATE of the case).
    entering = stages and target != from_status
    start: StageStart | None = None
    if entering:
        start = stage_start(case, target, now)
        fields["due_at"] = start.due if start else None
    changed = Case.objects.filter(pk=case.pk, version=case.version, status=from_status).update(
        version=F("version") + 1, updated_at=now, **fields
    )
    if not changed:
        raise CaseConflict(_("案件 %(n)s 刚被他人处理，请刷新后重试") % {"n": case.number})
    for name, value in fields.items():
        setattr(case, name, value)
    case.version += 1
    event = record_event(
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
    if entering:
        finish_stage(case, now)
        if start is not None:
            start.create(case)
    rollups.record_transition(case, event)
    return event


#: What a service's caller shows of a case it just changed (the API's detail, the pages).
RELATED = ("category__parent", "grid", "lead_unit", "suggested_unit")


def reload(case: Case) -> Case:
    """The case as stored now, in place, with its category, grid and units (one query:
    a caller showing it reads nothing more of them)."""
    case.refresh_from_db(from_queryset=Case.objects.select_related(*RELATED))
    return case

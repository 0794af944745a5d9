"""The case services, replayed in memory: the rows a story of one case leaves behind.

``CaseSim`` applies the steps of a case's story (``Step``) exactly as the verb
functions of ``cases.services`` would, had each been called at the step's time:
the same case fields, ``CaseEvent`` rows (payloads included), ``Deadline`` rows
(time limits from ``engine.time_limit``, due times from ``workcalendar.due_at``,
extensions, pauses) and ``Approval`` rows, and the deadline sweep's overdue marks at
the first whole minute after a deadline passes (the sweep runs every minute).
Nothing is written: ``history`` bulk-inserts the rows, and a test replays stories
through the real services and compares.

A step the services would refuse raises ``SimError``, except an extension asked for
after its deadline passed, which the story generator may propose and which is
dropped (``apply`` returns False), as the service would refuse it.

Cases come in by the hotline (``create_case`` by a call-taker: new), by a grid
worker (``report_by_grid_worker``: filed at once, or with a ``result`` fixed on
the spot, ``self_handle_case``: handled) or from the citizens' portal
(``report_by_citizen``: new, no actor). Photos are not simulated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils import timezone

from civicgrid.accounts.models import Role
from civicgrid.cases import workcalendar
from civicgrid.cases.models import (
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseEvent,
    Channel,
    Deadline,
    Stage,
    Status,
)
from civicgrid.cases.workflow import OPEN_ACTIVE, PARKABLE, STAGE_OF_STATUS

S = Status
M = TypeVar("M", bound=Model)
#: Per model: its fields' attnames, constant defaults, and (attname, callable) of the
#: fields whose default is made anew for each instance.
_FIELDS: dict[type[Model], tuple[frozenset[str], dict[str, Any], tuple[tuple[str, Any], ...]]] = {}


def _template(
    model: type[Model],
) -> tuple[frozenset[str], dict[str, Any], tuple[tuple[str, Any], ...]]:
    fields = model._meta.concrete_fields
    # A field without a default has ``NOT_PROVIDED`` (a class, so callable) as its
    # default: its ``get_default`` is a constant (None or "").
    made = [f for f in fields if f.has_default() and callable(f.default)]
    constant = {f.attname: f.get_default() for f in fields if f not in made}
    names = frozenset(f.attname for f in fields)
    known = _FIELDS[model] = (names, constant, tuple((f.attname, f.get_default) for f in made))
    return known


def _new(model: type[M], **values: Any) -> M:
    """``model(**values)`` given attnames, without ``Model.__init__``'s per-field work
    (a quarter of the simulation's time): the same attributes, defaults included."""
    names, constant, made = _FIELDS.get(model) or _template(model)
    if not names.issuperset(values):
        raise TypeError(f"{model.__name__}: unknown fields {set(values) - names}")
    obj = model.__new__(model)
    attributes = {"_state": ModelState(), **constant, **values}
    for attname, default in made:
        if attname not in values:
            attributes[attname] = default()
    obj.__dict__ = attributes
    return obj


#: Service actions that the history uses, and the sweep.
CREATE, SWEEP, SELF_HANDLE = "create", "sweep", "self_handle"


class SimError(Exception):
    """A step the services would refuse."""


@dataclass
class Intake:
    """What the hotline knows of a case when it is taken in (``services.Intake``)."""

    external_id: str
    received_at: datetime
    category_id: int
    urgency: str
    request_type: str
    title: str
    description: str
    address: str
    lon: float
    lat: float
    grid_id: int
    grid_path: str
    requester_name: str
    requester_phone: str
    call_taker: int | None
    suggested_unit_id: int | None
    tracking_code: str
    channel: str = Channel.HOTLINE
    #: Who registers the case when it does not come by the hotline (the grid worker;
    #: ``None`` for the portal). A hotline case is registered by ``call_taker``.
    reporter: int | None = None
    #: A grid worker's result when they fixed the problem on the spot (自处理).
    result: str = ""

    @property
    def creator(self) -> int | None:
        return self.call_taker if self.channel == Channel.HOTLINE else self.reporter


@dataclass
class Step:
    at: datetime
    action: str
    #: Who acted; ``None`` for a case taken in from the portal (no actor), or for a
    #: step of an imported history whose people are unknown, which then names the
    #: ``role`` it was taken in.
    actor: int | None
    unit: int | None = None
    text: str = ""
    satisfaction: int | None = None
    extra: Decimal | None = None
    approve: bool = True
    passed: bool = True
    role: str = ""


TimeLimit = Callable[[int, str, str], tuple[Decimal, str]]


@dataclass
class CaseSim:
    """One case as the services would leave it, built step by step."""

    intake: Intake
    case_id: int
    time_limit: TimeLimit
    roles: dict[int, str]
    approval_ids: Iterator[int]
    #: The end of the history: the sweep marks nothing at or after it.
    end: datetime
    #: The current time zone (the date in the case number), when the caller has it at
    #: hand: ``timezone.get_current_timezone()`` costs microseconds a case.
    zone: tzinfo | None = None
    case: Case = field(init=False)
    events: list[CaseEvent] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    sweeps: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        i = self.intake
        at = i.received_at
        creator = i.creator
        # What create_case does: a grid worker's report is filed at once.
        worker_report = i.channel == Channel.GRID_WORKER and creator is not None
        status = S.FILED if worker_report else S.NEW
        self.case = _new(
            Case,
            id=self.case_id,
            number=f"{timezone.localtime(at, self.zone):%Y%m%d}{self.case_id:07d}",
            tracking_code=i.tracking_code,
            channel=i.channel,
            request_type=i.request_type,
            category_id=i.category_id,
            urgency=i.urgency,
            status=status,
            status_before_park="",
            title=i.title.strip()[:200],
            description=i.description.strip(),
            address=i.address.strip(),
            lon=i.lon,
            lat=i.lat,
            input_crs="wgs84",
            grid_id=i.grid_id,
            grid_path=i.grid_path,
            needs_location=False,
            requester_name=i.requester_name.strip(),
            requester_phone=i.requester_phone.strip(),
            is_confidential=False,
            external_id=i.external_id.strip(),
            idempotency_key=None,
            suggested_unit_id=i.suggested_unit_id,
            created_by_id=creator,
            received_at=at,
            created_at=at,
            updated_at=at,
        )
        self._event(Action.CREATE, creator, "", at, to_status=status, public=True)
        self.events[-1].payload = {"channel": i.channel}
        self._open(status, at)
        self.steps.append(Step(at=at, action=CREATE, actor=creator))
        if i.result.strip():
            if not worker_report:
                raise SimError(f"{i.external_id}: only a grid worker fixes on the spot")
            # self_handle_case: at once, in the intake's transaction.
            step = Step(at=at, action=SELF_HANDLE, actor=creator)
            self._move(
                step,
                Action.SELF_HANDLE,
                S.HANDLED,
                reason=i.result,
                public=True,
                updates={"result": i.result.strip()},
            )
            self.steps.append(step)

    def _role(self, step: Step) -> str:
        if step.role:
            return step.role
        if step.actor is None:
            raise SimError("a step without an actor must name its role")
        return self.roles[step.actor]

    # -- reads for the story generator --------------------------------------------------------
    @property
    def status(self) -> str:
        return self.case.status

    @property
    def last_at(self) -> datetime:
        return self.steps[-1].at

    def running(self) -> Deadline | None:
        return next((d for d in self.deadlines if d.finished_at is None), None)

    def pending_extension(self) -> Approval | None:
        return self._pending(ApprovalKind.EXTENSION)

    def _pending(self, kind: str) -> Approval | None:
        return next(
            (a for a in self.approvals if a.kind == kind and a.status == ApprovalStatus.PENDING),
            None,
        )

    # -- the engine -------------------------------------------------------------------------
    def _event(
        self,
        action: str,
        actor: int | None,
        role: str,
        at: datetime,
        *,
        from_status: str = "",
        to_status: str = "",
        reason: str = "",
        public: bool = False,
        payload: dict[str, Any] | None = None,
        unit: int | None = None,
    ) -> CaseEvent:
        event = _new(
            CaseEvent,
            case_id=self.case_id,
            action=action,
            actor_id=actor,
            actor_role=role,
            actor_unit_id=unit,
            at=at,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            is_public=public,
            payload=payload or {},
        )
        self.events.append(event)
        return event

    def _open(self, status: str, at: datetime, stage: str | None = None) -> None:
        stage = stage or STAGE_OF_STATUS.get(status)
        if stage is None:
            self.case.due_at = None
            return
        amount, unit = self.time_limit(self.case.category_id, self.case.urgency, stage)
        due = workcalendar.due_at(at, amount, unit)
        self.deadlines.append(
            _new(
                Deadline,
                case_id=self.case_id,
                stage=stage,
                started_at=at,
                due_at=due,
                amount=amount,
                unit=unit,
            )
        )
        self.case.due_at = due

    def _finish(self, at: datetime) -> None:
        for deadline in self.deadlines:
            if deadline.finished_at is None:
                deadline.finished_at = at

    def _move(
        self,
        step: Step,
        action: str,
        to_status: str | None,
        *,
        reason: str = "",
        public: bool = False,
        payload: dict[str, Any] | None = None,
        unit: int | None = None,
        updates: dict[str, Any] | None = None,
        stages: bool = True,
    ) -> None:
        case = self.case
        from_status = case.status
        target = to_status or from_status
        for name, value in (updates or {}).items():
            setattr(case, name, value)
        case.status = target
        case.version += 1
        case.updated_at = step.at
        if step.actor is None and not step.role:
            # Only an imported history's steps may leave the person out (naming the role).
            raise SimError(f"{case.external_id}: {action} needs an actor")
        self._event(
            action,
            step.actor,
            self._role(step),
            step.at,
            from_status=from_status,
            to_status=target,
            reason=reason.strip(),
            public=public,
            payload=payload,
            unit=unit,
        )
        if stages and target != from_status:
            self._finish(step.at)
            self._open(target, step.at)

    def _need(self, *statuses: str) -> None:
        if self.case.status not in statuses:
            raise SimError(f"{self.case.external_id}: {self.case.status} not in {statuses}")

    # -- the deadline sweep --------------------------------------------------------------------
    def sweep(self, until: datetime, *, inclusive: bool = True) -> None:
        """Mark overdue, as a sweep every whole minute would, what passed its deadline
        by ``until`` (a sweep at ``until`` runs before a step at ``until``)."""
        for deadline in self.deadlines:
            if deadline.finished_at or deadline.overdue_at or deadline.paused_at:
                continue
            due = deadline.due_at
            if due >= until and due.tzinfo is until.tzinfo:
                # Marked at the next whole minute after it (wall time, as ``until``'s):
                # after ``until``, not now.
                continue
            at = due.replace(second=0, microsecond=0) + timedelta(minutes=1)
            if (at <= until if inclusive else at < until) and at < self.end:
                deadline.overdue_at = at
                self.case.is_overdue = True
                self._event(
                    Action.OVERDUE,
                    None,
                    "",
                    at,
                    payload={"stage": deadline.stage, "due_at": due.astimezone(UTC).isoformat()},
                )
                self.sweeps.append(at)

    def finish(self) -> None:
        """The history ends: the sweeps up to its end."""
        self.sweep(self.end, inclusive=False)

    # -- the steps -------------------------------------------------------------------------
    def apply(self, step: Step) -> bool:
        """Apply one step at its time, sweeping first. False when it was dropped."""
        if step.at <= self.last_at:
            raise SimError(f"{self.case.external_id}: steps must move forward in time")
        if step.at >= self.end:
            raise SimError(f"{self.case.external_id}: a step after the end of the history")
        self.sweep(step.at)
        handler = getattr(self, f"_do_{step.action}")
        if handler(step) is False:
            return False
        self.steps.append(step)
        return True

    def _do_accept(self, step: Step) -> None:
        self._need(S.NEW)
        self._move(step, Action.ACCEPT, S.FILED, reason=step.text, public=True)

    def _do_reject(self, step: Step) -> None:
        self._need(S.NEW)
        if not step.text.strip():
            raise SimError("a reason is required")
        self._move(step, Action.REJECT, S.REJECTED, reason=step.text, public=True)

    def _do_dispatch(self, step: Step) -> None:
        self._need(S.FILED, S.RETURNED)
        action = Action.REDISPATCH if self.case.status == S.RETURNED else Action.DISPATCH
        suggested = self.case.suggested_unit_id
        self._move(
            step,
            action,
            S.DISPATCHED,
            reason=step.text,
            public=True,
            unit=step.unit,
            payload={
                "lead_unit": step.unit,
                "assisting_units": [],
                "suggested_unit": suggested,
                "followed_suggestion": suggested == step.unit,
            },
            updates={"lead_unit_id": step.unit},
        )

    def _do_acknowledge(self, step: Step) -> None:
        self._need(S.DISPATCHED)
        lead = self.case.lead_unit_id
        self._move(step, Action.ACKNOWLEDGE, S.IN_PROGRESS, public=True, unit=lead)

    def _do_send_back(self, step: Step) -> None:
        self._need(S.DISPATCHED, S.IN_PROGRESS)
        self._move(
            step,
            Action.SEND_BACK,
            S.RETURNED,
            reason=step.text,
            unit=self.case.lead_unit_id,
            updates={"return_count": self.case.return_count + 1},
        )

    def _do_request_extension(self, step: Step) -> bool:
        self._need(S.IN_PROGRESS)
        if step.extra is None or step.extra <= 0 or self.pending_extension() is not None:
            raise SimError("bad extension request")
        if step.actor is None:
            raise SimError("an extension is asked for by someone")
        running = self.running()
        if running is not None and running.due_at < step.at:
            return False  # the service refuses: asked after the deadline
        approval = _new(
            Approval,
            id=next(self.approval_ids),
            case_id=self.case_id,
            kind=ApprovalKind.EXTENSION,
            status=ApprovalStatus.PENDING,
            reason=step.text.strip(),
            requested_by_id=step.actor,
            requested_at=step.at,
            extra_amount=step.extra,
            decision_note="",
        )
        self.approvals.append(approval)
        self._move(
            step,
            Action.REQUEST_EXTENSION,
            None,
            reason=step.text,
            unit=self.case.lead_unit_id,
            payload={"approval": approval.id, "extra_amount": str(step.extra)},
        )
        return True

    def _do_decide_extension(self, step: Step) -> None:
        self._need(S.IN_PROGRESS)
        approval = self.pending_extension()
        if approval is None:
            raise SimError("no pending extension")
        approval.status = ApprovalStatus.APPROVED if step.approve else ApprovalStatus.DENIED
        approval.decided_by_id = step.actor
        approval.decided_at = step.at
        approval.decision_note = step.text.strip()
        action = Action.APPROVE_EXTENSION if step.approve else Action.DENY_EXTENSION
        payload: dict[str, Any] = {"approval": approval.id}
        running = self.running()
        if step.approve and running is not None and approval.extra_amount is not None:
            old = running.due_at
            new_due = workcalendar.due_at(old, approval.extra_amount, running.unit)
            running.due_at = new_due
            running.amount = running.amount + approval.extra_amount
            payload.update(
                {"old_due": old.astimezone(UTC).isoformat(), "new_due": new_due.isoformat()}
            )
            self._move(
                step, action, None, reason=step.text, payload=payload, updates={"due_at": new_due}
            )
            return
        self._move(step, action, None, reason=step.text, payload=payload)

    def _do_park(self, step: Step) -> None:
        self._need(*PARKABLE)
        for deadline in self.deadlines:
            if deadline.finished_at is None:
                deadline.paused_at = step.at
        self._move(
            step,
            Action.PARK,
            S.PARKED,
            reason=step.text,
            updates={"status_before_park": self.case.status, "due_at": None},
            stages=False,
        )

    def _do_resume(self, step: Step) -> None:
        self._need(S.PARKED)
        back_to = self.case.status_before_park or S.FILED
        new_due = None
        for deadline in self.deadlines:
            if deadline.finished_at is not None or deadline.paused_at is None:
                continue
            new_due = workcalendar.shift_for_pause(
                deadline.due_at, deadline.paused_at, step.at, deadline.unit
            )
            deadline.due_at = new_due
            deadline.paused_at = None
        self._move(
            step,
            Action.RESUME,
            back_to,
            reason=step.text,
            updates={"status_before_park": "", "due_at": new_due},
            stages=False,
        )

    def _do_handle(self, step: Step) -> None:
        self._need(S.IN_PROGRESS)
        if not step.text.strip():
            raise SimError("a result is required")
        self._move(
            step,
            Action.HANDLE,
            S.HANDLED,
            reason=step.text,
            public=True,
            unit=self.case.lead_unit_id,
            updates={"result": step.text.strip()},
        )

    def _do_verify(self, step: Step) -> None:
        self._need(S.HANDLED)
        if self._role(step) not in (Role.GRID_WORKER, Role.SUPERVISOR):
            raise SimError("only a grid worker or a supervisor verifies")
        if not step.passed:
            self._move(
                step,
                Action.VERIFY_FAIL,
                S.IN_PROGRESS,
                reason=step.text,
                updates={"rework_count": self.case.rework_count + 1},
            )
            return
        if settings.CIVICGRID_CLOSE_ON_VERIFY:
            self._move(
                step,
                Action.VERIFY_PASS,
                S.CLOSED,
                reason=step.text,
                public=True,
                updates={"closed_at": step.at},
            )
            return
        self._move(step, Action.VERIFY_PASS, None, reason=step.text, public=True)
        self._finish(step.at)
        self._open(self.case.status, step.at, stage=Stage.CLOSE)

    def _do_close(self, step: Step) -> None:
        self._need(S.HANDLED)
        if not any(e.action == Action.VERIFY_PASS for e in self.events):
            raise SimError("not verified")
        self._move(
            step,
            Action.CLOSE,
            S.CLOSED,
            reason=step.text,
            public=True,
            updates={"closed_at": step.at},
        )

    def _do_follow_up(self, step: Step) -> None:
        self._need(S.CLOSED)
        if step.satisfaction not in range(1, 6):
            raise SimError("satisfaction is 1..5")
        self._move(
            step,
            Action.FOLLOW_UP,
            None,
            reason=step.text,
            payload={"satisfaction": step.satisfaction},
            updates={"satisfaction": step.satisfaction},
        )

    def _do_reopen(self, step: Step) -> None:
        self._need(S.CLOSED)
        if self.case.lead_unit_id is None:
            raise SimError("no lead unit")
        self._move(
            step,
            Action.REOPEN,
            S.DISPATCHED,
            reason=step.text,
            public=True,
            updates={"reopen_count": self.case.reopen_count + 1, "closed_at": None},
        )

    def _do_request_void(self, step: Step) -> None:
        self._need(*(OPEN_ACTIVE | {S.PARKED}))
        if step.actor is None or not step.text.strip() or self._pending(ApprovalKind.VOID):
            raise SimError("bad void request")
        approval = _new(
            Approval,
            id=next(self.approval_ids),
            case_id=self.case_id,
            kind=ApprovalKind.VOID,
            status=ApprovalStatus.PENDING,
            reason=step.text.strip(),
            requested_by_id=step.actor,
            requested_at=step.at,
            extra_amount=None,
            decision_note="",
        )
        self.approvals.append(approval)
        self._move(
            step, Action.REQUEST_VOID, None, reason=step.text, payload={"approval": approval.id}
        )

    def _do_decide_void(self, step: Step) -> None:
        self._need(*(OPEN_ACTIVE | {S.PARKED}))
        approval = self._pending(ApprovalKind.VOID)
        if approval is None:
            raise SimError("no pending void request")
        approval.status = ApprovalStatus.APPROVED if step.approve else ApprovalStatus.DENIED
        approval.decided_by_id = step.actor
        approval.decided_at = step.at
        approval.decision_note = step.text.strip()
        self._move(
            step,
            Action.APPROVE_VOID if step.approve else Action.DENY_VOID,
            S.VOIDED if step.approve else None,
            reason=step.text or approval.reason,
            payload={"approval": approval.id},
        )

    def _do_urge(self, step: Step) -> None:
        self._need(*(OPEN_ACTIVE | {S.PARKED}))
        self._move(
            step,
            Action.URGE,
            None,
            reason=step.text,
            updates={"urge_count": self.case.urge_count + 1},
        )


__all__ = ["CREATE", "SELF_HANDLE", "SWEEP", "CaseSim", "Intake", "SimError", "Step"]

"""What one case contributes to the statistics: computed from its row, deadlines and events.

``compute`` is a pure function of plain rows, so the transition hooks (reading the
rows from the database) and the bulk history generator (holding them in memory)
compute exactly the same facts. Definitions of every counter: ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from civicgrid.cases import workcalendar
from civicgrid.cases.models import OPEN_STATUSES, Action, Channel, Status
from civicgrid.cases.workflow import STAGE_OF_STATUS
from civicgrid.stats import conf
from civicgrid.stats.counters import (
    CASE_COUNTERS,
    PERSON_COUNTERS,
    STAGES,
    duration_bucket,
    zero_case,
    zero_person,
)

#: Columns read from ``cases_case`` (``Case.objects.values(*CASE_FIELDS)``).
CASE_FIELDS = (
    "id",
    "status",
    "channel",
    "request_type",
    "category_id",
    "lead_unit_id",
    "grid_path",
    "received_at",
    "closed_at",
    "return_count",
    "rework_count",
    "reopen_count",
    "urge_count",
    "satisfaction",
)
DEADLINE_FIELDS = ("stage", "started_at", "due_at", "finished_at", "overdue_at")
EVENT_FIELDS = ("action", "at", "actor_id", "actor_role", "from_status", "to_status")

DISPATCHING = frozenset({Action.DISPATCH, Action.REDISPATCH})
#: Events that start a new dispatch round (the unit that gets the case changes or starts over).
ROUND_START = DISPATCHING | {Action.REOPEN}
#: Events that move no deadline and say nothing about a person's work.
NOT_WORK = frozenset({Action.OVERDUE, Action.NOTE})
#: Who registered a case, by channel, when the intake event carries no role.
INTAKE_ROLE: dict[str, str] = {Channel.HOTLINE: "call_taker", Channel.GRID_WORKER: "grid_worker"}

PERSON_ACTION: dict[str, str] = {
    Action.CREATE: "reports",
    Action.ACCEPT: "accepts",
    Action.REJECT: "rejects",
    Action.DISPATCH: "dispatches",
    Action.REDISPATCH: "dispatches",
    Action.ACKNOWLEDGE: "acknowledges",
    Action.SEND_BACK: "send_backs",
    Action.HANDLE: "handles",
    Action.SELF_HANDLE: "handles",
    Action.VERIFY_PASS: "verifies",
    Action.VERIFY_FAIL: "verifies",
    Action.CLOSE: "closes",
    Action.FOLLOW_UP: "follow_ups",
    Action.REOPEN: "reopens",
    Action.URGE: "urges",
    Action.APPROVE_EXTENSION: "decisions",
    Action.DENY_EXTENSION: "decisions",
    Action.APPROVE_VOID: "decisions",
    Action.DENY_VOID: "decisions",
}


@dataclass
class CaseRow:
    id: int
    status: str
    channel: str
    request_type: str
    category_id: int
    lead_unit_id: int | None
    grid_path: str
    received_at: datetime
    closed_at: datetime | None
    return_count: int
    rework_count: int
    reopen_count: int
    urge_count: int
    satisfaction: int | None


@dataclass
class DeadlineRow:
    stage: str
    started_at: datetime
    due_at: datetime
    finished_at: datetime | None
    overdue_at: datetime | None


@dataclass
class EventRow:
    action: str
    at: datetime
    actor_id: int | None
    actor_role: str
    from_status: str
    to_status: str


PersonKey = tuple[date, int, str]


@dataclass
class Fact:
    """A case's dimensions, its case counters and its person counters by (day, user, role)."""

    case_id: int
    day: date
    month: date
    nodes: tuple[int, int, int, int]
    grid_path: str
    category: int
    unit: int
    channel: str
    request_type: str
    counters: dict[str, int]
    persons: dict[PersonKey, dict[str, int]] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The ``CaseFact`` row."""
        return {
            "case_id": self.case_id,
            "day": self.day,
            "month": self.month,
            "node0": self.nodes[0],
            "node1": self.nodes[1],
            "node2": self.nodes[2],
            "node3": self.nodes[3],
            "grid_path": self.grid_path,
            "category": self.category,
            "unit": self.unit,
            "channel": self.channel,
            "request_type": self.request_type,
            **self.counters,
        }

    def person_columns(self) -> list[dict[str, Any]]:
        """The ``PersonFact`` rows."""
        return [
            {
                "case_id": self.case_id,
                "day": day,
                "month": day.replace(day=1),
                "user": user,
                "role": role,
                "node0": self.nodes[0],
                "node1": self.nodes[1],
                "node2": self.nodes[2],
                "node3": self.nodes[3],
                "grid_path": self.grid_path,
                **values,
            }
            for (day, user, role), values in sorted(self.persons.items())
        ]


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def nodes_of(grid_path: str) -> tuple[int, int, int, int]:
    """The ids of a grid's ancestors by level, from its materialised path ("/1/5/23/")."""
    ids = [int(part) for part in grid_path.strip("/").split("/") if part][:4]
    ids += [0] * (4 - len(ids))
    return (ids[0], ids[1], ids[2], ids[3])


def stage_finishers(events: Sequence[EventRow], deadlines: Sequence[DeadlineRow]) -> dict[int, int]:
    """Which event (index) finished which deadline (index), replaying the engine's rule:
    an event that changes the status closes the running stage and opens the next one
    (park and resume pause instead); a passed verification that does not close opens
    the close stage. Deadlines are given in the order they were made."""
    found: dict[int, int] = {}
    upcoming = 0
    running: int | None = None

    def open_next() -> int | None:
        nonlocal upcoming
        if upcoming >= len(deadlines):
            return None
        upcoming += 1
        return upcoming - 1

    for index, event in enumerate(events):
        action = event.action
        if action == Action.CREATE:
            if event.to_status in STAGE_OF_STATUS:
                running = open_next()
            continue
        if action in NOT_WORK or action in (Action.PARK, Action.RESUME):
            continue
        changes = event.to_status != event.from_status
        if changes or action == Action.VERIFY_PASS:
            if running is not None and deadlines[running].finished_at is not None:
                found[index] = running
            running = None
            if (changes and event.to_status in STAGE_OF_STATUS) or not changes:
                running = open_next()
    return found


def _rounds(events: Sequence[EventRow]) -> dict[int, tuple[bool, bool]]:
    """For each dispatch (index): whether its round was sent back, and whether it was reworked."""
    out: dict[int, tuple[bool, bool]] = {}
    for index, event in enumerate(events):
        if event.action not in DISPATCHING:
            continue
        sent_back = reworked = False
        for later in events[index + 1 :]:
            if later.action in ROUND_START:
                break
            sent_back |= later.action == Action.SEND_BACK
            reworked |= later.action == Action.VERIFY_FAIL
        out[index] = (sent_back, reworked)
    return out


def compute(
    case: CaseRow,
    deadlines: Sequence[DeadlineRow],
    events: Sequence[EventRow],
    *,
    public_channels: Iterable[str] | None = None,
) -> Fact:
    """The fact of one case. ``deadlines`` and ``events`` in the order they were written."""
    public = set(conf.get("public_channels") if public_channels is None else public_channels)
    c = zero_case()
    status = case.status
    is_open = status in OPEN_STATUSES
    c["received"] = 1
    c["open"] = int(is_open)
    c["closed"] = int(status == Status.CLOSED)
    c["rejected"] = int(status == Status.REJECTED)
    c["voided"] = int(status == Status.VOIDED)
    c["merged"] = int(status == Status.MERGED)
    c["parked"] = int(status == Status.PARKED)

    actions = [e.action for e in events]
    filed = any(e.to_status == Status.FILED for e in events)
    rounds = _rounds(events)
    extensions = actions.count(Action.APPROVE_EXTENSION)
    c["filed"] = int(filed)
    c["filed_public"] = int(filed and case.channel in public)
    c["dispatches"] = len(rounds)
    c["dispatched"] = int(bool(rounds))
    c["accurate_dispatches"] = sum(not back for back, _rework in rounds.values())
    c["reworked_dispatches"] = sum(rework for _back, rework in rounds.values())
    c["handled"] = actions.count(Action.HANDLE) + actions.count(Action.SELF_HANDLE)
    c["extension_requests"] = actions.count(Action.REQUEST_EXTENSION)
    c["extensions"] = extensions
    c["extended_cases"] = int(extensions > 0)
    c["deferred"] = int(is_open and extensions > 0 and status != Status.PARKED)
    c["sent_back"] = case.return_count
    c["reworked"] = case.rework_count
    c["reworked_cases"] = int(case.rework_count > 0)
    c["reopened"] = case.reopen_count
    c["reopened_cases"] = int(case.reopen_count > 0)
    c["ever_closed"] = int(status == Status.CLOSED or case.reopen_count > 0)
    c["urged"] = case.urge_count
    c["urged_cases"] = int(case.urge_count > 0)

    late = False
    late_open = False
    for d in deadlines:
        if d.stage not in STAGES:
            continue
        if d.finished_at is not None:
            c[f"{d.stage}_done"] += 1
            if d.finished_at <= d.due_at:
                c[f"{d.stage}_ontime"] += 1
            else:
                late = True
        elif d.overdue_at is not None:
            c[f"{d.stage}_overdue_open"] += 1
            late_open = True
        if d.overdue_at is not None:
            late = True
    c["overdue"] = int(late)
    c["overdue_open"] = int(is_open and late_open)
    c["closed_ontime"] = int(status == Status.CLOSED and not late)

    if case.satisfaction is not None:
        c["followed_up"] = 1
        c[f"sat_{case.satisfaction}"] = 1
    if status == Status.CLOSED and case.closed_at is not None:
        seconds = max(0, int((case.closed_at - case.received_at).total_seconds()))
        c["handle_seconds"] = seconds
        c["work_seconds"] = max(
            0, int(workcalendar.working_seconds_between(case.received_at, case.closed_at))
        )
        c[duration_bucket(seconds)] += 1

    day = local_day(case.received_at)
    return Fact(
        case_id=case.id,
        day=day,
        month=day.replace(day=1),
        nodes=nodes_of(case.grid_path),
        grid_path=case.grid_path,
        category=case.category_id,
        unit=case.lead_unit_id or 0,
        channel=case.channel,
        request_type=case.request_type,
        counters=c,
        persons=_persons(case, deadlines, events, rounds, filed),
    )


def _persons(
    case: CaseRow,
    deadlines: Sequence[DeadlineRow],
    events: Sequence[EventRow],
    rounds: dict[int, tuple[bool, bool]],
    filed: bool,
) -> dict[PersonKey, dict[str, int]]:
    valid = filed and case.status not in (Status.VOIDED, Status.MERGED, Status.REJECTED)
    finishers = stage_finishers(events, deadlines)
    out: dict[PersonKey, dict[str, int]] = {}
    for index, event in enumerate(events):
        if event.actor_id is None or event.action in NOT_WORK:
            continue
        role = event.actor_role
        if event.action == Action.CREATE and not role:
            role = INTAKE_ROLE.get(case.channel, "")
        key = (local_day(event.at), event.actor_id, role)
        p = out.get(key)
        if p is None:
            p = out[key] = zero_person()
        p["events"] += 1
        counter = PERSON_ACTION.get(event.action)
        if counter:
            p[counter] += 1
        if event.action == Action.CREATE:
            p["valid_reports"] += int(valid)
        elif event.action in DISPATCHING:
            sent_back, reworked = rounds[index]
            p["accurate_dispatches"] += int(not sent_back)
            p["reworked_dispatches"] += int(reworked)
        elif event.action == Action.VERIFY_FAIL:
            p["verify_fails"] += 1
        if event.action == Action.VERIFY_PASS and event.to_status == Status.CLOSED:
            p["closes"] += 1
        finished = finishers.get(index)
        if finished is not None:
            d = deadlines[finished]
            if d.stage in STAGES and d.finished_at is not None:
                p[f"{d.stage}_timed"] += 1
                p[f"{d.stage}_ontime"] += int(d.finished_at <= d.due_at)
    return out


def as_case_row(values: dict[str, Any]) -> CaseRow:
    return CaseRow(**{name: values[name] for name in CASE_FIELDS})


def as_deadline_row(values: dict[str, Any]) -> DeadlineRow:
    return DeadlineRow(**{name: values[name] for name in DEADLINE_FIELDS})


def as_event_row(values: dict[str, Any]) -> EventRow:
    return EventRow(**{name: values[name] for name in EVENT_FIELDS})


__all__ = [
    "CASE_COUNTERS",
    "CASE_FIELDS",
    "DEADLINE_FIELDS",
    "EVENT_FIELDS",
    "PERSON_COUNTERS",
    "CaseRow",
    "DeadlineRow",
    "EventRow",
    "Fact",
    "compute",
    "local_day",
    "nodes_of",
    "stage_finishers",
]

"""The same counters computed straight from the cases, deadlines and events: no facts,
no rollups.

This is the baseline the rollups are checked and benchmarked against: the property
test asserts that every rollup equals it after any sequence of transitions, and
``make bench`` times it beside the rollup reads. Counts and sums are ``GROUP BY``
queries over ``cases_case``, ``cases_deadline`` and ``cases_caseevent``; what
depends on the order of a case's events (whether a dispatch was sent back) or on
the work calendar (office time) is computed per case in Python from the same rows.
It is written independently of ``facts.compute`` on purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from civicgrid.cases import workcalendar
from civicgrid.cases.models import OPEN_STATUSES, Action, Case, CaseEvent, Deadline, Status
from civicgrid.grids.models import Grid
from civicgrid.stats import conf
from civicgrid.stats.counters import (
    DURATION_BOUNDS_HOURS,
    DURATION_BUCKETS,
    PERSON_COUNTERS,
    STAGES,
    zero_case,
    zero_person,
)

FIELDS = {
    "category": "category_id",
    "unit": "lead_unit_id",
    "channel": "channel",
    "request_type": "request_type",
}
DISPATCH = (Action.DISPATCH, Action.REDISPATCH)
#: What each action counts as, for the person who took it.
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


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    from civicgrid.stats.rollups import day_bounds

    return day_bounds(start, end)


def _cases(scope: Grid | None, start: date, end: date) -> Any:
    low, high = _bounds(start, end)
    cases = Case.objects.filter(received_at__gte=low, received_at__lt=high)
    if scope is not None:
        cases = cases.filter(grid_path__startswith=scope.path)
    return cases


def _group(prefix: str, by: Sequence[str]) -> dict[str, Any]:
    group: dict[str, Any] = {}
    for name in by:
        if name == "day":
            group["g_day"] = TruncDate(f"{prefix}received_at")
        else:
            group[f"g_{name}"] = F(prefix + FIELDS[name])
    return group


def _key(row: dict[str, Any], by: Sequence[str]) -> tuple[Any, ...]:
    out = []
    for name in by:
        value = row[f"g_{name}"]
        out.append(value or 0 if name == "unit" else value)
    return tuple(out)


def case_counters(
    *, scope: Grid | None, start: date, end: date, by: Sequence[str] = ()
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Case counters of the cases taken in from ``start`` to ``end`` in ``scope``, by
    ``by`` (any of category, unit, channel, request_type, day)."""
    cases = _cases(scope, start, end)
    ids = cases.values("pk")
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(zero_case)
    late = Deadline.objects.filter(case=OuterRef("pk"), stage__in=STAGES).filter(
        Q(overdue_at__isnull=False) | Q(finished_at__gt=F("due_at"))
    )
    late_open = Deadline.objects.filter(
        case=OuterRef("pk"), stage__in=STAGES, finished_at__isnull=True, overdue_at__isnull=False
    )
    extended = CaseEvent.objects.filter(case=OuterRef("pk"), action=Action.APPROVE_EXTENSION)
    filed = CaseEvent.objects.filter(case=OuterRef("pk"), to_status=Status.FILED)
    public = conf.get("public_channels")
    opened = Q(status__in=OPEN_STATUSES)
    counts = {
        "received": Count("pk"),
        "open": Count("pk", filter=opened),
        "closed": Count("pk", filter=Q(status=Status.CLOSED)),
        "rejected": Count("pk", filter=Q(status=Status.REJECTED)),
        "voided": Count("pk", filter=Q(status=Status.VOIDED)),
        "merged": Count("pk", filter=Q(status=Status.MERGED)),
        "parked": Count("pk", filter=Q(status=Status.PARKED)),
        "deferred": Count("pk", filter=opened & ~Q(status=Status.PARKED) & Q(x_extended=True)),
        "filed": Count("pk", filter=Q(x_filed=True)),
        "filed_public": Count("pk", filter=Q(x_filed=True, channel__in=public)),
        "sent_back": Sum("return_count"),
        "reworked": Sum("rework_count"),
        "reworked_cases": Count("pk", filter=Q(rework_count__gt=0)),
        "reopened": Sum("reopen_count"),
        "reopened_cases": Count("pk", filter=Q(reopen_count__gt=0)),
        "ever_closed": Count("pk", filter=Q(status=Status.CLOSED) | Q(reopen_count__gt=0)),
        "urged": Sum("urge_count"),
        "urged_cases": Count("pk", filter=Q(urge_count__gt=0)),
        "overdue": Count("pk", filter=Q(x_late=True)),
        "overdue_open": Count("pk", filter=opened & Q(x_late_open=True)),
        "closed_ontime": Count("pk", filter=Q(status=Status.CLOSED, x_late=False)),
        "followed_up": Count("pk", filter=Q(satisfaction__isnull=False)),
        **{f"sat_{n}": Count("pk", filter=Q(satisfaction=n)) for n in range(1, 6)},
    }
    rows = (
        cases.annotate(
            x_late=Exists(late),
            x_late_open=Exists(late_open),
            x_extended=Exists(extended),
            x_filed=Exists(filed),
        )
        .values(**_group("", by))
        .annotate(**counts)
    )
    for row in rows:
        target = out[_key(row, by)]
        for name in counts:
            target[name] += int(row[name] or 0)

    event_counts = {
        "dispatches": Count("pk", filter=Q(action__in=DISPATCH)),
        "dispatched": Count("case", distinct=True, filter=Q(action__in=DISPATCH)),
        "handled": Count("pk", filter=Q(action__in=(Action.HANDLE, Action.SELF_HANDLE))),
        "extension_requests": Count("pk", filter=Q(action=Action.REQUEST_EXTENSION)),
        "extensions": Count("pk", filter=Q(action=Action.APPROVE_EXTENSION)),
        "extended_cases": Count("case", distinct=True, filter=Q(action=Action.APPROVE_EXTENSION)),
    }
    events: Any = CaseEvent.objects.filter(case__in=ids).values(**_group("case__", by))
    for row in events.annotate(**event_counts):
        target = out[_key(row, by)]
        for name in event_counts:
            target[name] += int(row[name] or 0)

    stage_counts: dict[str, Any] = {}
    for stage in STAGES:
        stage_counts[f"{stage}_done"] = Count(
            "pk", filter=Q(stage=stage, finished_at__isnull=False)
        )
        stage_counts[f"{stage}_ontime"] = Count(
            "pk", filter=Q(stage=stage, finished_at__lte=F("due_at"))
        )
        stage_counts[f"{stage}_overdue_open"] = Count(
            "pk", filter=Q(stage=stage, finished_at__isnull=True, overdue_at__isnull=False)
        )
    deadlines: Any = Deadline.objects.filter(case__in=ids).values(**_group("case__", by))
    for row in deadlines.annotate(**stage_counts):
        target = out[_key(row, by)]
        for name in stage_counts:
            target[name] += int(row[name] or 0)

    _per_case(cases, by, out)
    return dict(out)


def _dispatch_rounds(actions: list[str]) -> tuple[int, int]:
    """(dispatches not sent back, dispatches whose round had a rework)."""
    accurate = reworked = 0
    for i, action in enumerate(actions):
        if action not in DISPATCH:
            continue
        rest = []
        for later in actions[i + 1 :]:
            if later in DISPATCH or later == Action.REOPEN:
                break
            rest.append(later)
        accurate += Action.SEND_BACK not in rest
        reworked += Action.VERIFY_FAIL in rest
    return accurate, reworked


def _per_case(cases: Any, by: Sequence[str], out: dict[tuple[Any, ...], dict[str, int]]) -> None:
    """What depends on event order or the work calendar, case by case."""
    actions: dict[int, list[str]] = defaultdict(list)
    for case_id, action in (
        CaseEvent.objects.filter(case__in=cases.values("pk"))
        .order_by("case_id", "id")
        .values_list("case_id", "action")
    ):
        actions[case_id].append(action)
    rows = cases.values("pk", "status", "received_at", "closed_at", **_group("", by))
    for row in rows:
        target = out[_key(row, by)]
        accurate, reworked = _dispatch_rounds(actions[row["pk"]])
        target["accurate_dispatches"] += accurate
        target["reworked_dispatches"] += reworked
        if row["status"] == Status.CLOSED and row["closed_at"] is not None:
            seconds = max(0, int((row["closed_at"] - row["received_at"]).total_seconds()))
            target["handle_seconds"] += seconds
            target["work_seconds"] += max(
                0, int(workcalendar.working_seconds_between(row["received_at"], row["closed_at"]))
            )
            hours = seconds / 3600
            index = next(
                (i for i, b in enumerate(DURATION_BOUNDS_HOURS) if hours <= b),
                len(DURATION_BOUNDS_HOURS),
            )
            target[DURATION_BUCKETS[index]] += 1


def person_counters(
    *, scope: Grid | None, start: date, end: date
) -> dict[tuple[date, int, str], dict[str, int]]:
    """Person counters by (local day, user, role) of what people did from ``start`` to
    ``end`` on the cases of ``scope`` (whenever those were taken in)."""
    low, high = _bounds(start, end)
    events = CaseEvent.objects.filter(at__gte=low, at__lt=high, actor__isnull=False).exclude(
        action__in=(Action.NOTE, Action.OVERDUE)
    )
    if scope is not None:
        events = events.filter(case__grid_path__startswith=scope.path)
    rows = list(
        events.order_by("case_id", "id").values(
            "pk",
            "case_id",
            "action",
            "at",
            "actor_id",
            "actor_role",
            "from_status",
            "to_status",
            "case__channel",
        )
    )
    case_ids = {r["case_id"] for r in rows}
    finished: dict[tuple[int, datetime | None], Any] = {
        (d["case_id"], d["finished_at"]): d
        for d in Deadline.objects.filter(case_id__in=case_ids, finished_at__isnull=False).values(
            "case_id", "stage", "finished_at", "due_at"
        )
    }
    cases = {
        c["pk"]: c for c in Case.objects.filter(pk__in=case_ids).values("pk", "status", "channel")
    }
    was_filed = set(
        CaseEvent.objects.filter(case_id__in=case_ids, to_status=Status.FILED).values_list(
            "case_id", flat=True
        )
    )
    all_actions: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for pk, case_id, action in (
        CaseEvent.objects.filter(case_id__in=case_ids)
        .order_by("case_id", "id")
        .values_list("pk", "case_id", "action")
    ):
        all_actions[case_id].append((pk, action))
    intake_role = {"hotline": "call_taker", "grid_worker": "grid_worker"}
    out: dict[tuple[date, int, str], dict[str, int]] = defaultdict(zero_person)
    for r in rows:
        role = r["actor_role"]
        if r["action"] == Action.CREATE and not role:
            role = intake_role.get(r["case__channel"], "")
        day = timezone.localtime(r["at"], timezone.get_default_timezone()).date()
        p = out[(day, r["actor_id"], role)]
        action = r["action"]
        p["events"] += 1
        if action in PERSON_ACTION:
            p[PERSON_ACTION[action]] += 1
        if action == Action.VERIFY_FAIL:
            p["verify_fails"] += 1
        if action == Action.VERIFY_PASS and r["to_status"] == Status.CLOSED:
            p["closes"] += 1
        if action == Action.CREATE:
            case = cases[r["case_id"]]
            p["valid_reports"] += int(
                r["case_id"] in was_filed
                and case["status"] not in (Status.VOIDED, Status.MERGED, Status.REJECTED)
            )
        if action in DISPATCH:
            sequence = all_actions[r["case_id"]]
            index = next(i for i, (pk, _a) in enumerate(sequence) if pk == r["pk"])
            rest = []
            for _pk, later in sequence[index + 1 :]:
                if later in DISPATCH or later == Action.REOPEN:
                    break
                rest.append(later)
            p["accurate_dispatches"] += Action.SEND_BACK not in rest
            p["reworked_dispatches"] += Action.VERIFY_FAIL in rest
        # The stage a status change (or a passed verification) finished at that moment.
        moves = r["from_status"] != r["to_status"] or action == Action.VERIFY_PASS
        deadline = finished.get((r["case_id"], r["at"])) if moves else None
        if deadline is not None and action not in (Action.PARK, Action.RESUME, Action.CREATE):
            p[f"{deadline['stage']}_timed"] += 1
            p[f"{deadline['stage']}_ontime"] += int(deadline["finished_at"] <= deadline["due_at"])
    return {k: v for k, v in out.items() if any(v[name] for name in PERSON_COUNTERS)}


__all__ = ["case_counters", "person_counters"]

"""Property: after any sequence of transitions, every rollup equals a direct GROUP BY.

Hypothesis drives random sequences of real service calls (intake by the hotline and
by a grid worker, self-handling, accept, reject, dispatch to the right or the wrong
unit, acknowledge, send back, extensions, park and resume, handle, verify, follow-up,
reopen, urge, void, merge, the deadline sweep) on a few cases with the clock moving
forward between calls. Then, for grids of every level, each rollup (``GridRollup``,
``DimRollup``, ``Rollup``, ``PersonRollup`` where they are kept, day and month rows)
and the reads built on them must
equal ``stats.direct``, computed from the cases, deadlines and events alone, and a
rebuild from scratch must give the same rows.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.errors import CaseError
from civicgrid.cases.models import Case, Category, Channel
from civicgrid.cases.tests.fixtures import EAST_POINT, WEST_POINT, IntakeFactory
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.stats import direct, evaluations, query
from civicgrid.stats.counters import CASE_COUNTERS, PERSON_COUNTERS
from civicgrid.stats.models import DimRollup, GridRollup, PersonRollup, Rollup
from civicgrid.stats.rollups import rebuild_rollups

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 3, 4, 8, 0, tzinfo=SH)  # a Monday
PERIOD = (date(2024, 3, 1), date(2024, 12, 31))
#: A period cut inside its months: each end read as its month row less the days
#: outside (``query.span_parts``); the cases of March 4th are among those subtracted.
PART = (date(2024, 3, 5), date(2024, 4, 20))
DIMS = ["category", "unit", "channel", "request_type"]
DIM_LEVELS, ROLLUP_LEVELS = (0, 1), (0, 1)

ACTIONS = (
    *["advance"] * 24,
    "new",
    "report",
    "self_handle",
    "accept",
    "reject",
    "dispatch",
    "acknowledge",
    "send_back",
    "extend",
    "park",
    "resume",
    "handle",
    "verify",
    "follow_up",
    "reopen",
    "urge",
    "void",
    "merge",
    "sweep",
)


@pytest.fixture(autouse=True)
def _calendar_read_once(settings: Settings) -> None:
    """The work calendar does not change during these tests: read it once, not on
    every deadline computed (the root conftest rechecks it on every call)."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600


@dataclass
class World:
    tree: Tree
    new_case: IntakeFactory
    category: Category
    call_taker: User
    dispatcher: User
    supervisor: User
    leader: User
    east_worker: User
    handlers: dict[int, User]
    units: list[HandlingUnit]
    cases: list[int] = field(default_factory=list)


def _act(world: World, action: str, pick: int, aux: int, flag: bool) -> str | None:
    """Take ``action`` (or, for "advance", the usual next step); the action taken, if any."""
    s, w = services, world
    if action == "new" or not w.cases:
        point = EAST_POINT if flag else WEST_POINT
        w.cases.append(w.new_case(lon=point[0], lat=point[1]).pk)
        return "new"
    if action in ("report", "self_handle"):
        data = s.Intake(
            channel=Channel.GRID_WORKER,
            category=w.category,
            description="网格员巡查发现占道经营",
            lon=EAST_POINT[0],
            lat=EAST_POINT[1],
        )
        if action == "report":
            case, _new = s.create_case(data=data, actor=w.east_worker)
        else:
            case = s.self_handle_case(data=data, actor=w.east_worker, result="已当场劝离")
        w.cases.append(case.pk)
        return action
    if action == "sweep":
        return "sweep (marked)" if s.mark_overdue(now=datetime.now(tz=SH)) else None
    case = Case.objects.get(pk=w.cases[pick % len(w.cases)])
    handler = w.handlers.get(case.lead_unit_id or 0, w.call_taker)
    if action == "advance":  # the next step of the usual path, to get deep into it
        action = {
            "new": "accept",
            "filed": "dispatch",
            "returned": "dispatch",
            "dispatched": "send_back" if aux == 9 else "acknowledge",
            "in_progress": "extend" if aux == 9 else "handle",
            "handled": "verify",
            "closed": "reopen" if aux > 6 else "follow_up",
            "parked": "resume",
        }.get(case.status, "urge")
    do: dict[str, Callable[[], Any]] = {
        "accept": lambda: s.accept_case(case=case, actor=w.call_taker),
        "reject": lambda: s.reject_case(case=case, actor=w.call_taker, reason="不属于受理范围"),
        "dispatch": lambda: s.dispatch_case(
            case=case, actor=w.dispatcher, unit=w.units[aux % len(w.units)]
        ),
        "acknowledge": lambda: s.acknowledge_case(case=case, actor=handler),
        "send_back": lambda: s.send_back_case(case=case, actor=handler, reason="非我单位职责"),
        "extend": lambda: (
            s.request_extension(
                case=case, actor=handler, reason="需协调", extra_amount=Decimal(aux % 3 + 1)
            ),
            s.decide_extension(case=case, actor=w.supervisor, approve=flag, note="意见"),
        ),
        "park": lambda: s.park_case(case=case, actor=w.supervisor, reason="季节性"),
        "resume": lambda: s.resume_case(case=case, actor=w.supervisor),
        "handle": lambda: s.handle_case(case=case, actor=handler, result="已处理"),
        "verify": lambda: s.verify_case(
            case=case, actor=w.east_worker, passed=flag, note="" if flag else "仍未解决"
        ),
        "follow_up": lambda: s.follow_up_case(
            case=case, actor=w.call_taker, satisfaction=aux % 5 + 1
        ),
        "reopen": lambda: s.reopen_case(case=case, actor=w.call_taker, reason="不满意"),
        "urge": lambda: s.urge_case(case=case, actor=w.leader, reason="尽快"),
        "void": lambda: (
            s.request_void(case=case, actor=w.call_taker, reason="重复"),
            s.decide_void(case=case, actor=w.supervisor, approve=flag, note="意见"),
        ),
        "merge": lambda: s.merge_case(
            case=case,
            into=Case.objects.get(pk=w.cases[(pick + 1) % len(w.cases)]),
            actor=w.call_taker,
        ),
    }
    try:
        do[action]()
    except CaseError:
        return None  # not allowed from this status: nothing happened
    return f"{action} ({'pass' if flag else 'fail'})" if action == "verify" else action


def _nonzero(rows: dict[Any, dict[str, int]], names: tuple[str, ...]) -> dict[Any, dict[str, int]]:
    return {k: v for k, v in rows.items() if any(v[n] for n in names)}


def _table(
    model: Any, keys: list[str], names: tuple[str, ...], **filters: Any
) -> dict[Any, dict[str, int]]:
    """A rollup's rows, by ``keys``, without the rows of zeros."""
    out: dict[Any, dict[str, int]] = {}
    for row in model.objects.filter(**filters).values(*keys, *names):
        out[tuple(row[k] for k in keys)] = {n: row[n] for n in names}
    return _nonzero(out, names)


def _regroup(
    rows: dict[Any, dict[str, int]], key: Callable[[tuple[Any, ...]], Any], names: tuple[str, ...]
) -> dict[Any, dict[str, int]]:
    """Direct counters summed into other groups (by month, by one dimension …)."""
    out: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(names, 0))
    for group, counters in rows.items():
        target = out[key(group)]
        for name, value in counters.items():
            target[name] += value
    return _nonzero(dict(out), names)


def _month(day: date) -> date:
    return day.replace(day=1)


def _check_rollups(
    grid: Grid,
    grain: str,
    when: Callable[[date], date],
    detail: dict[Any, dict[str, int]],
    people: dict[Any, dict[str, int]],
) -> None:
    """Each rollup kept for the grid's level, at one grain, against the direct counters."""
    c = CASE_COUNTERS
    found = _table(GridRollup, ["period"], c, node=grid.pk, grain=grain)
    assert found == _regroup(detail, lambda g: (when(g[0]),), c), (grid.code, grain)
    if grid.level in DIM_LEVELS:
        for n, dim in enumerate(DIMS, start=1):
            rows = _table(DimRollup, ["period", "key"], c, node=grid.pk, grain=grain, dim=dim)
            want = _regroup(detail, lambda g, n=n: (when(g[0]), str(g[n])), c)  # type: ignore[misc]
            assert rows == want, (grid.code, grain, dim)
    if grid.level in ROLLUP_LEVELS:
        rows = _table(Rollup, ["period", *DIMS], c, node=grid.pk, grain=grain)
        assert rows == _regroup(detail, lambda g: (when(g[0]), *g[1:]), c), (grid.code, grain)
        keys = ["period", "user", "role"]
        found = _table(PersonRollup, keys, PERSON_COUNTERS, node=grid.pk, grain=grain)
        want = _regroup(people, lambda g: (when(g[0]), *g[1:]), PERSON_COUNTERS)
        assert found == want, (grid.code, grain)


def _check_grid(grid: Grid) -> None:
    start, end = PERIOD
    c = CASE_COUNTERS
    detail = direct.case_counters(scope=grid, start=start, end=end, by=["day", *DIMS])
    people = direct.person_counters(scope=grid, start=start, end=end)
    _check_rollups(grid, "d", lambda d: d, detail, people)
    _check_rollups(grid, "m", _month, detail, people)
    # The reads, whichever table answers them, for the period and by day.
    for by in ([], ["category"], ["unit"], ["channel", "request_type"], DIMS):
        read = {
            tuple(r[k] for k in by): r["counters"]
            for r in query.case_counters(scope=grid, start=start, end=end, by=by)
        }
        want = _regroup(detail, lambda g, by=by: tuple(g[1 + DIMS.index(k)] for k in by), c)  # type: ignore[misc]
        assert _nonzero(read, c) == want, (grid.code, by)
    daily = {
        (r["day"], r["unit"]): r["counters"]
        for r in query.case_counters(scope=grid, start=start, end=end, by=["unit"], daily=True)
    }
    assert daily == _regroup(detail, lambda g: (g[0], g[2]), c), grid.code
    low, high = PART
    inside = {g: v for g, v in detail.items() if low <= g[0] <= high}
    for by in ([], ["unit"], DIMS):
        read = {
            tuple(r[k] for k in by): r["counters"]
            for r in query.case_counters(scope=grid, start=low, end=high, by=by)
        }
        want = _regroup(inside, lambda g, by=by: tuple(g[1 + DIMS.index(k)] for k in by), c)  # type: ignore[misc]
        assert _nonzero(read, c) == want, (grid.code, PART, by)
    acted = {g: v for g, v in people.items() if low <= g[0] <= high}
    for role in {g[2] for g in people}:
        found = {
            (r["user_id"],): {n: r[n] for n in PERSON_COUNTERS}
            for r in evaluations.position_evaluation(scope=grid, start=low, end=high, role=role)
        }
        mine = {g: v for g, v in acted.items() if g[2] == role}
        want = _regroup(mine, lambda g: (g[1],), PERSON_COUNTERS)
        assert _nonzero(found, PERSON_COUNTERS) == want, (grid.code, PART, role)


def _check() -> None:
    # The district and its subdistricts (every rollup), a community (breakdowns) and
    # a grid at each end of the tree (totals; the rest from the facts).
    codes = ["620103", "620103001", "620103002", "620103002001", "620103002001001"]
    for grid in Grid.objects.filter(code__in=[*codes, "620103001001001"]):
        _check_grid(grid)


def _snapshot() -> dict[str, set[tuple[Any, ...]]]:
    out = {}
    for model, names in (
        (GridRollup, CASE_COUNTERS),
        (DimRollup, CASE_COUNTERS),
        (Rollup, CASE_COUNTERS),
        (PersonRollup, PERSON_COUNTERS),
    ):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        out[model.__name__] = {
            tuple(row[f] for f in fields)
            for row in model.objects.values(*fields)
            if any(row[n] for n in names)
        }
    return out


@pytest.fixture
def world(
    tree: Tree,
    new_case: IntakeFactory,
    category: Category,
    call_taker: User,
    dispatcher: User,
    supervisor: User,
    leader: User,
    east_worker: User,
    unit_handler: User,
    west_handler: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> World:
    return World(
        tree,
        new_case,
        category,
        call_taker,
        dispatcher,
        supervisor,
        leader,
        east_worker,
        {city_unit.pk: unit_handler, west_unit.pk: west_handler},
        [city_unit, west_unit],
    )


STEPS = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(0, 2),
        st.integers(0, 9),
        st.booleans(),
        st.integers(1, 3000),
    ),
    min_size=8,
    max_size=40,
)


@pytest.mark.django_db
@settings(
    max_examples=int(os.environ.get("CIVICGRID_HYPOTHESIS_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_rollups_equal_a_direct_group_by_after_any_sequence_of_transitions(
    world: World, steps: list[tuple[str, int, int, bool, int]]
) -> None:
    with transaction.atomic():
        world.cases = []
        now = START
        for action, pick, aux, flag, minutes in steps:
            now += timedelta(minutes=minutes)
            with time_machine.travel(now, tick=False):
                taken = _act(world, action, pick, aux, flag)
                if taken:
                    event(f"took {taken}")
        _check()
        hooked = _snapshot()
        rebuild_rollups(*PERIOD, refresh_facts=True)
        assert _snapshot() == hooked
        transaction.set_rollback(True)

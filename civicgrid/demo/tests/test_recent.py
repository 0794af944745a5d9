"""The demo's present: the last two weeks of cases up to now, made at a pinned moment.

The present is made once for the module (a Thursday morning in June 2025, the
clock pinned with time-machine) and rolled back after it; each test reads it, and
a test that writes rolls its own writes back.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import routing, selectors, workcalendar
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
    RoutingRule,
    Status,
)
from civicgrid.cases.services.engine import time_limit
from civicgrid.cases.workflow import STAGE_OF_STATUS
from civicgrid.demo import history, recent
from civicgrid.demo.accounts import DEMO_ACCOUNTS
from civicgrid.demo.history import load_history
from civicgrid.demo.recent import RecentSummary, load_recent
from civicgrid.demo.services import load_demo
from civicgrid.grids.models import Grid, HandlingUnit, Level
from civicgrid.stats import direct
from civicgrid.stats import selectors as stats
from civicgrid.stats.models import CaseFact, GridRollup
from civicgrid.stats.rollups import forget_cases
from civicgrid.stats.tests.test_rollups_property import _check_rollups, _month

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 12, 10, 40, tzinfo=SH)  # a Thursday morning
FIRST = date(2025, 5, 30)


@pytest.fixture(autouse=True)
def _calendar_read_once(settings: Settings) -> None:
    """The work calendar does not change during these tests: read it once, not on
    every deadline computed (the root conftest rechecks it on every call)."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(scope="module")
def present(django_db_setup: None, django_db_blocker: Any) -> Iterator[RecentSummary]:
    """The demo district and its present, made once for the module, rolled back after."""
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
        time_machine.travel(NOW, tick=False),
    ):
        load_demo()
        yield load_recent()
        transaction.set_rollback(True)


def recent_cases() -> Any:
    return Case.objects.filter(external_id__startswith=recent.PREFIX)


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("present")]


def test_it_covers_two_weeks_up_to_now_at_the_daily_rate(present: RecentSummary) -> None:
    cases = recent_cases()
    first = cases.order_by("received_at").first()
    last = cases.order_by("-received_at").first()
    assert first is not None
    assert last is not None

    assert (present.start, present.now) == (FIRST, NOW)
    assert present.written == cases.count() == present.planned
    assert timezone_day(first.received_at) == FIRST
    assert NOW - timedelta(hours=2) < last.received_at < NOW
    assert not CaseEvent.objects.filter(case__in=cases, at__gte=NOW).exists()
    channels = Counter(cases.values_list("channel", flat=True))
    assert set(channels) == {Channel.HOTLINE, Channel.GRID_WORKER, Channel.WEB}
    # About 170 hotline cases a day (13 days and a morning), more reports than the portal's.
    assert 140 * 13 < channels[Channel.HOTLINE] < 200 * 14
    assert channels[Channel.GRID_WORKER] > 3 * channels[Channel.WEB] > 0


def timezone_day(moment: datetime) -> date:
    return moment.astimezone(SH).date()


def test_it_has_the_rhythm_of_hours_and_weekdays() -> None:
    cases = recent_cases()
    hotline = [
        c.astimezone(SH)
        for c in cases.filter(channel=Channel.HOTLINE).values_list("received_at", flat=True)
    ]
    by_day = Counter(moment.date() for moment in hotline)
    whole = [day for day in by_day if day != NOW.date()]
    workdays = [by_day[day] for day in whole if workcalendar.is_workday(day)]
    days_off = [by_day[day] for day in whole if not workcalendar.is_workday(day)]
    # Weekends and the Dragon Boat Festival (31 May – 2 June 2025) are quieter.
    assert len(days_off) == 5
    assert min(workdays) > max(days_off)
    by_hour = Counter(moment.hour for moment in hotline)
    assert by_hour[10] > 5 * by_hour[3]
    rounds = [
        c.astimezone(SH)
        for c in cases.filter(channel=Channel.GRID_WORKER).values_list("received_at", flat=True)
    ]
    office = sum(8 <= m.hour < 19 for m in rounds)
    assert office > 0.9 * len(rounds)
    assert sum(m.weekday() >= 5 for m in rounds) < 0.15 * len(rounds)


def test_every_state_is_there_in_realistic_proportions(present: RecentSummary) -> None:
    statuses = Counter(recent_cases().values_list("status", flat=True))

    for status in Status.values:
        if status != Status.MERGED:
            assert statuses[status] > 0, status
    assert statuses == Counter({k: v for k, v in present.statuses.items() if v})
    total = sum(statuses.values())
    assert statuses[Status.CLOSED] > 0.55 * total
    assert statuses[Status.IN_PROGRESS] > 5 * statuses[Status.NEW]
    assert statuses[Status.REJECTED] + statuses[Status.VOIDED] < 0.05 * total
    pending = Counter(
        Approval.objects.filter(case__in=recent_cases(), status=ApprovalStatus.PENDING).values_list(
            "kind", flat=True
        )
    )
    assert pending[ApprovalKind.EXTENSION] > 0
    assert pending[ApprovalKind.VOID] > 0
    assert recent_cases().filter(status=Status.CLOSED, satisfaction=None).exists()
    assert recent_cases().filter(channel=Channel.GRID_WORKER, status=Status.HANDLED).exists()
    assert all(n > 0 for n in present.held.values()), present.held


def test_in_progress_cases_show_every_deadline_colour() -> None:
    rows = (
        recent_cases()
        .filter(status=Status.IN_PROGRESS)
        .annotate(started=selectors.stage_started_at())
    )
    colours = Counter(selectors.deadline_state(started_at=c.started, due_at=c.due_at) for c in rows)

    assert colours["green"] > colours["yellow"] > 0
    assert colours["red"] > 0
    assert recent_cases().filter(status=Status.IN_PROGRESS, is_overdue=True).exists()


def test_every_demo_account_has_something_to_do() -> None:
    wanted = {
        "calltaker": ["accept"],
        "dispatcher": ["dispatch", "returned"],
        "supervisor": ["approve", "overdue"],
        "leader": ["overdue"],
        "unit": ["acknowledge", "handle"],
        "street": ["overdue"],
        "community": ["overdue"],
        "gridworker": ["verify"],
    }
    for account in DEMO_ACCOUNTS:
        if account.username not in wanted:
            continue
        user = User.objects.get(username=account.username)
        tasks = selectors.my_tasks(user)
        for kind in wanted[account.username]:
            assert tasks.counts.get(kind, 0) > 0, (account.username, kind, tasks.counts)
            assert selectors.task_cases(user, kind).exists()


def test_events_and_deadlines_agree_with_each_case() -> None:
    cases = {c.pk: c for c in recent_cases()}
    last_status: dict[int, str] = {}
    for case_id, to_status in (
        CaseEvent.objects.filter(case_id__in=cases)
        .exclude(to_status="")
        .order_by("case_id", "at", "id")
        .values_list("case_id", "to_status")
    ):
        last_status[case_id] = to_status
    running: dict[int, list[Deadline]] = {pk: [] for pk in cases}
    for deadline in Deadline.objects.filter(case_id__in=cases, finished_at=None):
        running[deadline.case_id].append(deadline)

    for pk, case in cases.items():
        assert last_status[pk] == case.status, case.external_id
        open_stages = running[pk]
        if case.status in STAGE_OF_STATUS:
            assert len(open_stages) == 1, case.external_id
            assert open_stages[0].stage == STAGE_OF_STATUS[case.status]
            assert open_stages[0].due_at == case.due_at
            assert open_stages[0].paused_at is None
            assert case.is_overdue or case.due_at > NOW - timedelta(minutes=1)
        elif case.status == Status.PARKED:
            assert len(open_stages) == 1
            assert open_stages[0].paused_at is not None
            assert case.due_at is None
        else:
            assert open_stages == [], case.external_id
            assert case.due_at is None, case.external_id


def test_the_rollups_equal_a_direct_group_by_for_the_window() -> None:
    end = NOW.date()
    district = Grid.objects.get(code="620103")
    street = Grid.objects.get(level=Level.SUBDISTRICT, name="秀川街道")
    for grid in (district, street):
        detail = direct.case_counters(
            scope=grid,
            start=FIRST,
            end=end,
            by=["day", "category", "unit", "channel", "request_type"],
        )
        people = direct.person_counters(scope=grid, start=FIRST, end=end)
        assert detail
        assert people
        _check_rollups(grid, "d", lambda d: d, detail, people)
        _check_rollups(grid, "m", _month, detail, people)
    totals = stats.totals(scope=None, start=FIRST, end=end)
    assert totals["received"] == recent_cases().count()
    assert GridRollup.objects.filter(grain="d", period=end).exists()


def test_a_second_run_writes_nothing(present: RecentSummary) -> None:
    tables = (Case, CaseEvent, Deadline, Approval, CaseFact)
    before = [model.objects.count() for model in tables]

    again = load_recent(days=3)
    out = StringIO()
    call_command("demo", stdout=out)

    assert (again.existing, again.written) == (present.written, 0)
    assert [model.objects.count() for model in tables] == before
    assert f"最近的演示案件已有 {present.written} 件" in out.getvalue()


def test_the_history_loads_after_the_present_and_before_it() -> None:
    scale = 0.003
    figures = history.FIGURES.scaled(scale)
    made = Counter(recent_cases().values_list("status", flat=True))

    # After: the present is no other history.
    load_history(scale=scale)
    year = stats.totals(scope=None, start=history.START, end=history.END)
    assert (year["received"], year["closed"]) == (figures.received, figures.closed)

    # Before: the present made again after the history is the same present.
    ids = list(recent_cases().values_list("pk", flat=True))
    forget_cases(ids)
    Case.objects.filter(pk__in=ids).delete()
    again = load_recent()
    assert Counter(recent_cases().values_list("status", flat=True)) == made
    assert again.written == sum(made.values())
    year = stats.totals(scope=None, start=history.START, end=history.END)
    assert (year["received"], year["closed"]) == (figures.received, figures.closed)


def test_the_in_memory_routing_and_time_limits_are_the_services() -> None:
    root = Grid.objects.get(code="620103")
    world = history.load_world(root, 620103)
    # A rule beside the defaults: noise in one subdistrict goes to the 城市管理局.
    noise = Category.objects.get(code="SJ0603")
    street = Grid.objects.get(level=Level.SUBDISTRICT, name="秀川街道")
    RoutingRule.objects.create(
        category=noise, grid=street, lead_unit=HandlingUnit.objects.get(code="620103-CGJ")
    )
    world = history.load_world(root, 620103)
    suggest = recent.memory_suggester(world.categories, world.context.grids)
    leaves = Grid.objects.filter(level=Level.GRID, path__startswith=root.path).order_by("code")
    sample = list(leaves[::70]) + list(leaves.filter(path__startswith=street.path)[:2])
    categories = [c for c in world.categories.values() if c.parent_id and c.is_active]

    for grid, category in itertools.product(sample, categories):
        found = routing.suggest(category=category, grid=grid)
        assert suggest(category.pk, grid.pk) == (found.lead.pk if found else None)
    recent._prefill_time_limits(world)
    for (category_id, urgency, stage), limit in world._limits.items():
        case = Case(category=world.categories[category_id], urgency=urgency)
        assert time_limit(case, stage) == limit


def test_the_command_can_leave_the_present_out() -> None:
    ids = list(recent_cases().values_list("pk", flat=True))
    forget_cases(ids)
    Case.objects.filter(pk__in=ids).delete()

    call_command("demo", "--no-recent", stdout=StringIO())
    assert not recent_cases().exists()

    out = StringIO()
    call_command("demo", "--recent-days", "2", stdout=out)
    days = {timezone_day(c) for c in recent_cases().values_list("received_at", flat=True)}
    assert days == {NOW.date() - timedelta(days=1), NOW.date()}
    assert "最近 2 天的案件（2025-06-11 至此刻）" in out.getvalue()
    assert "此刻：待受理" in out.getvalue()


def test_an_action_on_a_case_of_the_present_goes_through_the_services() -> None:
    """The rows are the services' own: the next step of a held story is theirs to take."""
    from civicgrid.cases import services

    case = recent_cases().filter(status=Status.RETURNED).first()
    assert case is not None
    dispatcher = User.objects.get(username="dispatcher")
    lead = HandlingUnit.objects.get(pk=case.suggested_unit_id)

    moved = services.dispatch_case(case=case, actor=dispatcher, unit=lead)

    assert moved.status == Status.DISPATCHED
    assert moved.events.order_by("-at", "-id").first().action == Action.REDISPATCH  # type: ignore[union-attr]

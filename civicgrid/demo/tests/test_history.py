"""The demo history: its figures, by construction and as the statistics compute them.

The full history (61,802 cases) takes a minute or two; here it is made at a small
scale, where the same construction must give the scaled figures exactly. The full
run is checked by hand (``civicgrid demo --history``; see docs/statistics.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from pytest_django.fixtures import Settings

from civicgrid.cases.models import Action, Case, CaseEvent, Channel, Status
from civicgrid.demo import history
from civicgrid.demo.history import FIGURES, HistoryError, HistorySummary, load_history
from civicgrid.demo.history_plan import Figures, allocate, plan_cases
from civicgrid.demo.services import load_demo
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.stats import selectors

SCALE = 0.02
EXPECTED = FIGURES.scaled(SCALE)


@pytest.fixture(autouse=True)
def _calendar_read_once(settings: Settings) -> None:
    """The work calendar does not change during these tests: read it once, not on
    every deadline computed (the root conftest rechecks it on every call)."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600


@pytest.fixture(scope="module")
def loaded(django_db_setup: None, django_db_blocker: Any) -> Iterator[HistorySummary]:
    """The demo district and a small history, made once for the module, rolled back after."""
    with django_db_blocker.unblock(), transaction.atomic():
        load_demo()
        yield load_history(scale=SCALE)
        transaction.set_rollback(True)


def test_the_figures_scale_and_stay_consistent() -> None:
    assert Figures(received=1236, closed=1217, urban_received=229, urban_closed=227) == EXPECTED
    assert (EXPECTED.open, EXPECTED.urban_open) == (19, 2)
    assert FIGURES.scaled(1) is FIGURES
    with pytest.raises(ValueError, match="too small"):
        FIGURES.scaled(0.0001)


def test_allocation_splits_a_total_exactly_in_proportion() -> None:
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(allocate(61_802, [0.3, 1.7, 2.2, 0.01])) == 61_802


def _the_statistics_find_the_figures_in_the_rows() -> None:
    summary = selectors.summary(scope=None, start=history.START, end=history.END)

    totals = summary["totals"]
    assert (totals["received"], totals["closed"], totals["in_progress"]) == (
        EXPECTED.received,
        EXPECTED.closed,
        EXPECTED.open,
    )
    urban = next(d for d in summary["domains"] if d["key"] == "urban")
    assert (urban["name"], urban["received"], urban["closed"], urban["in_progress"]) == (
        "城市管理",
        EXPECTED.urban_received,
        EXPECTED.urban_closed,
        EXPECTED.urban_open,
    )
    assert summary["units_involved"] == 18 == HandlingUnit.objects.count()


def _the_rows_agree_with_the_statistics() -> None:
    cases = Case.objects.filter(channel=Channel.HOTLINE)

    assert cases.count() == EXPECTED.received
    assert cases.filter(status=Status.CLOSED).count() == EXPECTED.closed
    assert cases.filter(category__kind__in=["component", "event"]).count() == (
        EXPECTED.urban_received
    )
    assert cases.exclude(lead_unit=None).order_by().values("lead_unit").distinct().count() == 18
    assert not cases.filter(received_at__year__lt=2020).exists()
    assert not CaseEvent.objects.filter(at__gte=history._until()).exists()


def _cases_run_the_whole_workflow_with_its_detours() -> None:
    actions = Counter(CaseEvent.objects.values_list("action", flat=True))

    for action in (
        Action.CREATE,
        Action.ACCEPT,
        Action.DISPATCH,
        Action.REDISPATCH,
        Action.SEND_BACK,
        Action.ACKNOWLEDGE,
        Action.REQUEST_EXTENSION,
        Action.APPROVE_EXTENSION,
        Action.HANDLE,
        Action.VERIFY_PASS,
        Action.VERIFY_FAIL,
        Action.FOLLOW_UP,
        Action.REOPEN,
        Action.OVERDUE,
    ):
        assert actions[action] > 0, action
    assert actions[Action.CREATE] == EXPECTED.received
    # Send-backs, reworks, reopens: a few per cent, not the rule.
    assert actions[Action.SEND_BACK] < 0.08 * EXPECTED.received
    assert actions[Action.REOPEN] < 0.06 * EXPECTED.received


def _the_measures_are_plausible() -> None:
    totals = selectors.totals(scope=None, start=history.START, end=history.END)

    assert 0.85 < totals["satisfaction_rate"] < 0.97
    assert 0.85 < totals["follow_up_rate"] < 0.98
    assert 0.01 < totals["reopen_rate"] < 0.05
    assert 0.9 < totals["handle_ontime_rate"] < 0.995
    assert 24 < totals["median_hours"] < 24 * 10
    assert totals["median_hours"] < totals["mean_hours"] < totals["p90_hours"]


def _a_second_run_adds_nothing() -> None:
    before = (Case.objects.count(), CaseEvent.objects.count())

    again = load_history(scale=SCALE)

    assert (again.written, again.existing) == (0, EXPECTED.received)
    assert (Case.objects.count(), CaseEvent.objects.count()) == before


def _it_refuses_a_history_of_another_seed() -> None:
    with pytest.raises(HistoryError, match="another seed"):
        load_history(scale=SCALE, seed=7)


def _the_stats_command_shows_the_figures_as_json() -> None:
    out = StringIO()
    call_command("stats", "--from", "2020-01-01", "--to", "2020-12-23", stdout=out)

    data = json.loads(out.getvalue())
    assert data["totals"]["received"] == EXPECTED.received
    assert data["totals"]["closed"] == EXPECTED.closed
    assert data["totals"]["in_progress"] == EXPECTED.open
    urban = {d["key"]: d for d in data["domains"]}["urban"]
    assert (urban["received"], urban["closed"], urban["in_progress"]) == (
        EXPECTED.urban_received,
        EXPECTED.urban_closed,
        EXPECTED.urban_open,
    )
    assert data["units_involved"] == 18
    assert len(data["rows"]) == 18  # --by unit by default
    assert {r["band"] for r in data["rows"]} <= {"优秀", "良好", "合格", "不合格"}


def _the_demo_command_says_what_the_statistics_compute() -> None:
    out = StringIO()
    call_command("demo", "--history", "--history-scale", str(SCALE), "--no-recent", stdout=out)

    text = out.getvalue()
    assert "本次写入 0 件" in text
    assert f"接办 {EXPECTED.received}，办结 {EXPECTED.closed}，在办 {EXPECTED.open}" in text
    assert "承办单位 18 个" in text
    assert (
        f"城市管理：接办 {EXPECTED.urban_received}，办结 {EXPECTED.urban_closed}，"
        f"在办 {EXPECTED.urban_open}"
    ) in text


def _the_demo_command_refuses_another_scale() -> None:
    with pytest.raises(CommandError, match="another seed or scale"):
        call_command(
            "demo", "--history", "--history-scale", "0.03", "--no-recent", stdout=StringIO()
        )


def _the_plan_is_the_same_for_a_seed_and_has_the_years_rhythm() -> None:
    root = Grid.objects.get(code="620103")
    world = history.load_world(root, 620103)
    figures = FIGURES.scaled(0.05)

    plans = plan_cases(world.context, figures, seed=620103, prefix="T-")
    again = plan_cases(world.context, figures, seed=620103, prefix="T-")
    other = plan_cases(world.context, figures, seed=1, prefix="T-")

    def key(p: Any) -> tuple[Any, ...]:
        i = p.intake
        return (i.received_at, i.category_id, i.grid_id, i.lon, i.description, p.open_at_end)

    assert [key(p) for p in plans] == [key(p) for p in again]
    assert [key(p) for p in plans] != [key(p) for p in other]
    assert len(plans) == figures.received
    assert sum(p.open_at_end for p in plans) == figures.open
    by_weekday = Counter(p.intake.received_at.weekday() for p in plans)
    assert by_weekday[6] < 0.75 * by_weekday[0]
    ice = [p.intake.received_at.month for p in plans if p.code == "SJ0404"]
    assert ice
    assert set(ice) <= {1, 2, 3, 10, 11, 12}
    noise = Counter(p.intake.received_at.month for p in plans if p.code.startswith("SJ060"))
    assert noise[7] + noise[8] > 2 * (noise[1] + noise[12])
    festival = sum(
        date(2020, 1, 25) <= p.intake.received_at.date() <= date(2020, 1, 31) for p in plans
    )
    march = sum(date(2020, 3, 9) <= p.intake.received_at.date() <= date(2020, 3, 15) for p in plans)
    assert festival < 0.7 * march
    open_ages = [(history._until() - p.intake.received_at).days for p in plans if p.open_at_end]
    assert sorted(open_ages)[len(open_ages) // 2] < 10  # mostly the last days'


@pytest.mark.django_db
@pytest.mark.usefixtures("loaded")
def test_the_demo_history_at_a_small_scale() -> None:
    """One test, so that the history is made once (test workers would each make it)."""
    _the_statistics_find_the_figures_in_the_rows()
    _the_rows_agree_with_the_statistics()
    _cases_run_the_whole_workflow_with_its_detours()
    _the_measures_are_plausible()
    _the_stats_command_shows_the_figures_as_json()
    _a_second_run_adds_nothing()
    _it_refuses_a_history_of_another_seed()
    _the_demo_command_says_what_the_statistics_compute()
    _the_demo_command_refuses_another_scale()
    _the_plan_is_the_same_for_a_seed_and_has_the_years_rhythm()

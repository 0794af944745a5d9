"""The dashboards' reads: scopes, periods, which table answers, and how many queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Status
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.core import periodic
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.stats import query, selectors
from civicgrid.stats.models import DimRollup, GridRollup, Rollup
from civicgrid.stats.tasks import rebuild_recent_rollups

DjangoQueries = Callable[..., Any]


@pytest.fixture
def cases(drive: Callable[[str], Case], new_case: IntakeFactory) -> list[Case]:
    """Five cases in the east (closed, handled, returned, parked, new) and one in the west."""
    made = [drive(s) for s in (Status.CLOSED, Status.HANDLED, Status.RETURNED, Status.PARKED)]
    made.append(new_case())
    made.append(new_case(lon=WEST_POINT[0], lat=WEST_POINT[1]))
    return made


def _today() -> tuple[date, date]:
    today = timezone.localdate()
    return today, today


@pytest.mark.usefixtures("cases")
def test_every_scope_counts_only_its_own_cases(tree: Tree) -> None:
    start, end = _today()

    def received(scope: Any) -> int:
        return selectors.totals(scope=scope, start=start, end=end)["received"]

    assert received(None) == received(tree.district) == 6
    assert (received(tree.east), received(tree.west)) == (5, 1)
    assert received(tree.community_a) == 1  # the west point lies in 甲社区
    assert received(tree["620103002001"]) == 5
    assert received(tree["620103002001001"]) == 5  # grid C1
    assert received(tree["620103002002"]) == 0


@pytest.mark.usefixtures("cases")
def test_a_community_is_summed_from_the_facts_like_its_subdistrict_from_the_rollups(
    tree: Tree,
) -> None:
    start, end = _today()
    community = tree["620103002001"]  # level 2: no breakdown rollup is kept for it
    grid = tree["620103002001001"]  # the same five cases, and those of the whole east

    for by in (["category"], ["unit", "channel"]):
        from_facts = query.case_counters(scope=community, start=start, end=end, by=by)
        assert query.case_counters(scope=grid, start=start, end=end, by=by) == from_facts
        from_rollups = query.case_counters(scope=tree.east, start=start, end=end, by=by)
        assert from_facts == from_rollups
        assert sum(r["counters"]["received"] for r in from_facts) == 5
    assert not DimRollup.objects.filter(node=community.pk).exists()
    assert DimRollup.objects.filter(node=tree.east.pk).exists()


def test_whole_months_are_read_from_the_month_rows() -> None:
    d = date
    # January: its month row less the 1st to the 14th (15 rows, not 17 days); March:
    # its 10 days (fewer than the month row less 21 days).
    assert query.span_parts(d(2020, 1, 15), d(2020, 3, 10)) == [
        (1, "m", d(2020, 1, 1), d(2020, 2, 1)),
        (1, "d", d(2020, 3, 1), d(2020, 3, 10)),
        (-1, "d", d(2020, 1, 1), d(2020, 1, 14)),
    ]
    assert query.span_parts(d(2020, 1, 1), d(2020, 12, 31)) == [
        (1, "m", d(2020, 1, 1), d(2020, 12, 1))
    ]
    # A year to the 26th: the month row of its last month less the 27th to the 30th.
    assert query.span_parts(d(2025, 11, 27), d(2026, 11, 26)) == [
        (1, "m", d(2025, 12, 1), d(2026, 11, 1)),
        (1, "d", d(2025, 11, 27), d(2025, 11, 30)),
        (-1, "d", d(2026, 11, 27), d(2026, 11, 30)),
    ]
    assert query.span_parts(d(2020, 2, 3), d(2020, 2, 20)) == [
        (1, "m", d(2020, 2, 1), d(2020, 2, 1)),
        (-1, "d", d(2020, 2, 1), d(2020, 2, 2)),
        (-1, "d", d(2020, 2, 21), d(2020, 2, 29)),
    ]
    assert query.span_parts(d(2020, 2, 3), d(2020, 2, 9)) == [
        (1, "d", d(2020, 2, 3), d(2020, 2, 9))
    ]


def test_the_rows_read_sum_to_every_day_of_the_period_once() -> None:
    origin = date(2019, 12, 1)
    for offset in range(0, 400, 7):
        for length in (0, 1, 5, 13, 27, 28, 29, 30, 31, 45, 59, 200, 364, 365):
            start = origin + timedelta(days=offset)
            end = start + timedelta(days=length)
            weight: dict[date, int] = {}
            for sign, grain, first, last in query.span_parts(start, end):
                day = first
                while day <= last:
                    month_end = query._month_end(day) if grain == "m" else day
                    while day <= month_end:
                        weight[day] = weight.get(day, 0) + sign
                        day += timedelta(days=1)
            covered = {day for day, w in weight.items() if w}
            assert all(w in (0, 1) for w in weight.values()), (start, end)
            assert covered == {start + timedelta(days=i) for i in range(length + 1)}, (start, end)


def test_period_bounds() -> None:
    assert selectors.period_bounds("week", date(2020, 12, 23)) == (
        date(2020, 12, 21),
        date(2020, 12, 27),
    )
    assert selectors.period_bounds("month", date(2020, 2, 10)) == (
        date(2020, 2, 1),
        date(2020, 2, 29),
    )


@pytest.mark.usefixtures("cases")
def test_month_rows_and_day_rows_agree(tree: Tree) -> None:
    today = timezone.localdate()
    month = (today.replace(day=1), query._month_end(today))
    by_month = query.case_counters(scope=tree.district, start=month[0], end=month[1], by=["unit"])
    by_day = Rollup.objects.filter(node=tree.district.pk, grain="d").values_list(
        "received", flat=True
    )

    assert sum(r["counters"]["received"] for r in by_month) == sum(by_day) == 6


@pytest.mark.usefixtures("cases")
def test_the_dashboard_reads_take_a_few_queries_whatever_the_number_of_cases(
    tree: Tree, django_assert_num_queries: DjangoQueries
) -> None:
    start, end = _today()
    year = (end - timedelta(days=364), end)  # partial months at both ends
    district: dict[str, Any] = {"scope": tree.district, "start": year[0], "end": year[1]}
    # Each read is one query of the rollups, plus one of names where it shows them.
    reads: list[tuple[int, Callable[[], Any]]] = [
        (1, lambda: selectors.totals(scope=tree.district, start=start, end=end)),
        (1, lambda: selectors.totals(**district)),
        (1, lambda: selectors.trend(scope=tree.east, start=year[0], end=year[1], grain="month")),
        (1, lambda: selectors.trend(**district, grain="day")),
        (2, lambda: selectors.breakdown(**district, by="category")),
        (1, lambda: selectors.breakdown(**district, by="channel")),
        (2, lambda: selectors.breakdown(**district, by="unit")),
        (2, lambda: selectors.grid_values(parent=tree.district, start=year[0], end=year[1])),
        (
            2,
            lambda: selectors.grid_values(
                parent=tree.district, start=year[0], end=year[1], level=3
            ),
        ),
        (2, lambda: selectors.unit_league(**district)),
        (2, lambda: selectors.unit_evaluation(**district)),
        (2, lambda: selectors.area_evaluation(parent=tree.district, start=year[0], end=year[1])),
        (1, lambda: selectors.hotline_kpis(**district)),
        (1, lambda: selectors.latest_cases(scope=tree.east, limit=3)),
        (4, lambda: selectors.summary(**district)),
    ]
    for queries, read in reads:
        with django_assert_num_queries(queries):
            read()
    for role in ("call_taker", "dispatcher", "unit_handler", "grid_worker", "supervisor"):
        with django_assert_num_queries(1):  # the people's names joined
            selectors.position_evaluation(**district, role=role)
    feed = selectors.latest_cases(scope=tree.east, limit=3)
    assert [c["number"] for c in feed] == [
        c.number for c in Case.objects.in_subtree(tree.east).order_by("-received_at", "-id")[:3]
    ]


@pytest.mark.usefixtures("cases")
def test_the_choropleth_has_every_grid_of_the_level_with_zeros(tree: Tree) -> None:
    start, end = _today()

    grids = selectors.grid_values(parent=tree.district, start=start, end=end, level=3)

    assert len(grids) == 8
    assert {g["code"]: g["received"] for g in grids if g["received"]} == {
        "620103001001001": 1,
        "620103002001001": 5,
    }
    one = next(g for g in grids if g["code"] == "620103002001001")
    assert (one["overdue"], one["satisfaction_rate"], one["name"]) == (0, None, "丙社区第1网格")
    assert (
        selectors.breakdown(scope=tree.district, start=start, end=end, by="subdistrict")[1][
            "received"
        ]
        == 5
    )


def test_a_transition_rolled_back_leaves_the_rollups_as_they_were(
    new_case: IntakeFactory, call_taker: User, tree: Tree
) -> None:
    case = new_case()
    start, end = _today()
    before = selectors.totals(scope=tree.district, start=start, end=end)

    def accept_then_fail() -> None:
        with transaction.atomic():
            services.accept_case(case=case, actor=call_taker)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        accept_then_fail()

    assert selectors.totals(scope=tree.district, start=start, end=end) == before
    assert before["filed"] == 0


@pytest.mark.usefixtures("cases")
def test_the_periodic_rebuild_repairs_a_rollup_that_drifted(tree: Tree) -> None:
    start, end = _today()
    right = selectors.totals(scope=tree.district, start=start, end=end)
    GridRollup.objects.filter(node=tree.district.pk, grain="d").update(received=999)
    assert selectors.totals(scope=tree.district, start=start, end=end)["received"] == 999

    rebuild_recent_rollups.call()

    assert selectors.totals(scope=tree.district, start=start, end=end) == right
    assert "stats.rebuild_recent_rollups" in {job.name for job in periodic.jobs()}

"""The intake hook computes the new case's fact from the rows it has just written,
without reading them back: it must store exactly what the rows give."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Category, Channel, Urgency
from civicgrid.cases.tests.fixtures import EAST_POINT, WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.stats.models import DimRollup, GridRollup, PersonRollup, Rollup
from civicgrid.stats.rollups import load_facts, rebuild_rollups, stored_facts

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"urgency": Urgency.URGENT, "request_type": "complaint"},
        {"lon": None, "lat": None},  # kept for manual location: no grid, no nodes
        {"lon": WEST_POINT[0], "lat": WEST_POINT[1], "channel": Channel.WEB},
        # Received late on a Sunday evening (Shanghai): the day of the fact is local.
        {"received_at": datetime(2026, 3, 1, 23, 59, 30, 123456, tzinfo=SH)},
    ],
)
def test_the_intake_hook_stores_the_fact_its_rows_give(
    new_case: IntakeFactory, city_unit: HandlingUnit, overrides: dict[str, object]
) -> None:
    case = new_case(**overrides)
    assert stored_facts([case.pk]) == load_facts([case.pk])


def test_a_worker_report_is_filed_at_once_and_counted_so(
    east_worker: User, category: Category, city_unit: HandlingUnit
) -> None:
    data = services.Intake(
        channel=Channel.GRID_WORKER,
        category=category,
        description="井盖缺失",
        lon=EAST_POINT[0],
        lat=EAST_POINT[1],
    )
    case, created = services.create_case(data=data, actor=east_worker)
    assert created
    assert case.status == "filed"
    fact = stored_facts([case.pk])[case.pk]
    assert fact == load_facts([case.pk])[case.pk]
    assert fact.counters["filed"] == 1
    assert fact.persons  # the grid worker's report


def test_the_hooks_rollups_equal_a_rebuild(
    new_case: IntakeFactory, city_unit: HandlingUnit
) -> None:
    cases = [new_case(description=f"第{i}件") for i in range(3)]
    day = stored_facts([cases[0].pk])[cases[0].pk].day
    before = sorted(GridRollup.objects.values_list("node", "level", "parent", "grain", "received"))
    assert before  # the hooks wrote them
    rebuild_rollups(day, day)
    after = sorted(GridRollup.objects.values_list("node", "level", "parent", "grain", "received"))
    assert after == before


def _rollup_rows() -> dict[str, list[tuple[object, ...]]]:
    return {
        model.__name__: sorted(
            tuple(row.values())
            for row in model.objects.values(
                *(f.attname for f in model._meta.concrete_fields if not f.primary_key)
            )
        )
        for model in (GridRollup, DimRollup, Rollup, PersonRollup)
    }


def _four_cases(new_case: IntakeFactory) -> None:
    """Cases in February, on the first and in the middle of March, and in April."""
    for when in (
        datetime(2026, 2, 27, 10, 0, tzinfo=SH),
        datetime(2026, 3, 1, 23, 59, tzinfo=SH),
        datetime(2026, 3, 15, 9, 30, tzinfo=SH),
        datetime(2026, 4, 2, 14, 0, tzinfo=SH),
    ):
        new_case(received_at=when, description=f"{when:%m%d}")


@pytest.mark.parametrize(
    "span",
    [
        (date(2026, 2, 27), date(2026, 3, 15)),  # two months in part
        (date(2026, 3, 1), date(2026, 3, 31)),  # one whole month
        (date(2026, 2, 15), date(2026, 4, 10)),  # in part, whole, in part
        (date(2026, 3, 1), date(2026, 3, 1)),  # one day
    ],
)
def test_a_rebuild_of_any_span_gives_the_hooks_rows(
    new_case: IntakeFactory, city_unit: HandlingUnit, span: tuple[date, date]
) -> None:
    """Day rows from the facts, month rows of whole months from the day rows and of the
    months a span covers in part from the facts: every rollup row as the hooks made it."""
    _four_cases(new_case)
    before = _rollup_rows()
    assert all(before.values())
    rebuild_rollups(*span)
    assert _rollup_rows() == before


def _schema() -> dict[str, object]:
    """The rollup tables' constraints and indexes as Django sees them, their identity
    sequences by name."""
    from django.db import connection

    schema: dict[str, object] = {}
    with connection.cursor() as cursor:
        for model in (GridRollup, DimRollup, Rollup, PersonRollup):
            table = model._meta.db_table
            constraints = connection.introspection.get_constraints(cursor, table)
            schema[table] = {
                name: (c["columns"], c["unique"], c["primary_key"], c["index"], c["check"])
                for name, c in constraints.items()
            }
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            schema[f"{table} sequence"] = cursor.fetchone()[0]
    return schema


@pytest.mark.parametrize(
    ("span", "locked"),
    [
        ((date(2026, 2, 1), date(2026, 4, 30)), False),  # every row: none kept
        ((date(2026, 2, 27), date(2026, 3, 15)), False),  # rows outside the span kept
        ((date(2026, 3, 1), date(2026, 3, 31)), True),  # the tables busy: rows moved
    ],
)
def test_a_rebuild_into_fresh_tables_swapped_in_gives_the_hooks_rows(
    new_case: IntakeFactory,
    city_unit: HandlingUnit,
    monkeypatch: pytest.MonkeyPatch,
    span: tuple[date, date],
    locked: bool,
) -> None:
    """PostgreSQL: a rebuild of most of a table's rows builds a fresh table (the rows
    outside the span copied), its indexes after the rows, and swaps it in under the
    table's name, with its constraints', indexes' and identity's names; when the
    tables stay busy it moves the span's rows into them instead."""
    from django.db import connection

    from civicgrid.stats import rollups

    if connection.vendor != "postgresql":
        pytest.skip("the swap is PostgreSQL's")
    _four_cases(new_case)
    before, schema = _rollup_rows(), _schema()
    top = Rollup.objects.order_by("-id").values_list("id", flat=True)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        reader = "cg_rebuild_test_reader" if cursor.fetchone()[0] else ""
        if reader:  # a reporting role's privileges stay (the role goes with the test's rollback)
            cursor.execute(f"CREATE ROLE {reader}")
            cursor.execute(f"GRANT SELECT ON {Rollup._meta.db_table} TO {reader}")
    monkeypatch.setattr(rollups, "SWAP_SHARE", 0.0)
    monkeypatch.setattr(rollups, "SWAP_MIN_ROWS", 0)
    swapped: list[str] = []
    swap_in = rollups._swap_in

    def spy(fresh: dict[type, str], days: tuple[date, date], months: tuple[date, date]) -> None:
        swapped.extend(fresh.values())
        swap_in(fresh, days, months)

    monkeypatch.setattr(rollups, "_swap_in", spy)
    if locked:
        monkeypatch.setattr(rollups, "_lock_briefly", lambda tables: False)
    rebuild_rollups(*span)
    assert len(swapped) == 4
    assert _rollup_rows() == before
    assert _schema() == schema
    # New rows take the ids the table's identity gives next, as a delete and insert would.
    assert (
        min(
            Rollup.objects.filter(period__gte=span[0], period__lte=span[1]).values_list(
                "id", flat=True
            )
        )
        > top
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", ["%\\_\\_rebuild%"])
        assert cursor.fetchone()[0] == 0
        if reader:
            cursor.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT'), "
                "has_table_privilege(%s, %s, 'INSERT')",
                [reader, Rollup._meta.db_table, reader, Rollup._meta.db_table],
            )
            assert cursor.fetchone() == (True, False)
    rebuild_rollups(*span)  # again, over the swapped tables
    assert _rollup_rows() == before


def test_a_rebuild_of_a_few_days_deletes_and_inserts_in_place(
    new_case: IntakeFactory, city_unit: HandlingUnit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small span (the periodic rebuild's days) never builds a fresh table."""
    from django.db import connection

    from civicgrid.stats import rollups

    for month in range(1, 11):
        new_case(received_at=datetime(2026, month, 1, 10, 0, tzinfo=SH))
    before = _rollup_rows()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the planner's estimates by real statistics
            for model in (GridRollup, DimRollup, Rollup, PersonRollup):
                cursor.execute(f"ANALYZE {model._meta.db_table}")

    def fresh(*args: object) -> str:
        raise AssertionError("a few days' rebuild swapped a table")

    monkeypatch.setattr(rollups, "_fresh_table", fresh)
    monkeypatch.setattr(rollups, "SWAP_MIN_ROWS", 0)  # the share of the rows decides
    rebuild_rollups(date(2026, 3, 1), date(2026, 3, 1))
    assert _rollup_rows() == before


@pytest.mark.parametrize("one_to_one", [True, False])
def test_the_deepest_staged_rows_are_copied_or_summed_alike(
    new_case: IntakeFactory,
    city_unit: HandlingUnit,
    monkeypatch: pytest.MonkeyPatch,
    one_to_one: bool,
) -> None:
    """PostgreSQL copies the staged rows of a stage's deepest level as its day rows
    when each is one (``_one_to_one``), and sums them otherwise: the same rows."""
    from civicgrid.stats import rollups

    for i, when in enumerate(
        (datetime(2026, 3, 1, 10, 0, tzinfo=SH), datetime(2026, 3, 1, 11, 0, tzinfo=SH))
    ):
        new_case(received_at=when, description=f"第{i}件")
    before = _rollup_rows()
    monkeypatch.setattr(rollups, "_one_to_one", lambda *args: one_to_one)
    rebuild_rollups(date(2026, 2, 20), date(2026, 3, 10))
    assert _rollup_rows() == before


def test_a_fact_whose_month_is_not_its_days_is_summed_not_copied(
    new_case: IntakeFactory, city_unit: HandlingUnit
) -> None:
    """Two facts of one day and key, one with another month (a fact written wrong):
    the day row sums both, as the portable path does, rather than two rows of one key."""
    from civicgrid.stats.models import CaseFact, PersonFact

    when = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    first, second = (new_case(received_at=when, description=f"第{i}件") for i in range(2))
    for facts in (CaseFact, PersonFact):
        facts.objects.filter(case_id=second.pk).update(month=date(2026, 2, 1))
    rebuild_rollups(date(2026, 3, 1), date(2026, 3, 1))
    fact = CaseFact.objects.get(pk=first.pk)
    day = {"grain": "d", "period": date(2026, 3, 1)}
    cube = Rollup.objects.filter(**day, level=1, node=fact.node1)
    assert sorted(cube.values_list("received", flat=True)) == [2]
    months = Rollup.objects.filter(grain="m", level=1, node=fact.node1)
    assert sorted(months.values_list("period", "received")) == [(date(2026, 3, 1), 1)]


def test_a_table_never_analysed_is_judged_by_real_statistics(
    new_case: IntakeFactory, city_unit: HandlingUnit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the share of a table's rows in the span is the planner's estimate; a
    table never analysed is analysed first (its estimates would be defaults)."""
    from django.db import connection

    from civicgrid.stats import rollups

    if connection.vendor != "postgresql":
        pytest.skip("the swap is PostgreSQL's")
    for month in (3, 4):
        new_case(received_at=datetime(2026, month, 2, 10, 0, tzinfo=SH))
    monkeypatch.setattr(rollups, "SWAP_MIN_ROWS", 0)
    monkeypatch.setattr(rollups, "SWAP_SHARE", 0.5)
    table = Rollup._meta.db_table
    with connection.cursor() as cursor:
        # As after a bulk load: rows, no statistics.
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = %s::regclass", [table]
        )
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", [table])
    year = ((date(2026, 1, 1), date(2026, 12, 31)), (date(2026, 1, 1), date(2026, 12, 31)))
    assert rollups._swapped(Rollup, "", *year)
    march = ((date(2026, 3, 2), date(2026, 3, 2)), (date(2026, 3, 1), date(2026, 3, 31)))
    assert not rollups._swapped(Rollup, "", *march)

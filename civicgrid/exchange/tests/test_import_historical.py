"""Historical imports: the export's times and final states, with the events, deadlines
and statistics the services would have written."""

from __future__ import annotations

import gc
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from civicgrid.cases.models import Action, Case, CaseEvent, Channel, Deadline, Stage, Status
from civicgrid.cases.services.intake import TRACKING_ALPHABET
from civicgrid.cases.tests.fixtures import EAST_POINT
from civicgrid.exchange import writer
from civicgrid.exchange.importer import GC_THRESHOLDS, _fewer_collections, _random_codes, schedule
from civicgrid.exchange.tests.conftest import Run, write_xlsx
from civicgrid.grids.models import HandlingUnit
from civicgrid.stats import selectors
from civicgrid.stats.models import CaseFact
from civicgrid.stats.rollups import rebuild_rollups
from civicgrid.stats.tests.test_rollups_property import _snapshot

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=TZ)


def naive(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute)


def export_rows() -> list[dict[str, object]]:
    lon, lat = EAST_POINT
    common = {"经度": lon, "纬度": lat, "来电人": "张先生", "联系电话": "13912345678"}
    return [
        {
            **common,
            "工单编号": "GD2025030300001",
            "受理时间": naive(3, 9),
            "诉求类型": "投诉",
            "诉求内容": "桥下环岛有人占道摆摊，影响通行",
            "问题分类": "城乡建设/市容管理/占道经营",
            "事发地址": "东街道桥下环岛",
            "承办单位": "城管执法局东街道中队",
            "派单时间": naive(3, 9, 30),
            "办结时间": naive(4, 16),
            "工单状态": "已办结",
            "答复内容": "已劝离摊贩，恢复通行",
            "满意度": "满意",
        },
        {
            **common,
            "工单编号": "GD2025030300002",
            "受理时间": naive(3, 10),
            "诉求类型": "求助",
            "诉求内容": "小区门口垃圾两天没人清运",
            "问题分类": "积存垃圾渣土",
            "承办单位": "城管执法局东街道中队",
            "工单状态": "办理中",
        },
        {
            "工单编号": "GD2025030300003",
            "受理时间": naive(3, 11),
            "诉求内容": "咨询供暖费缴纳时间",
            "问题分类": "供暖费",
            "工单状态": "待受理",
            "联系电话": "0931-8123456",
        },
        {
            **common,
            "工单编号": "GD2025030300004",
            "受理时间": naive(3, 12),
            "诉求内容": "反映外区道路问题",
            "问题分类": "道路积水",
            "工单状态": "不予受理",
            "办结时间": naive(3, 12, 20),
            "答复内容": "不属于本区管辖，已告知来电人",
        },
    ]


@pytest.fixture
def imported(tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run) -> str:
    source = write_xlsx(tmp_path / "工单.xlsx", export_rows())
    return run(str(source), "--mapping", str(wgs84_mapping), "--mode", "historical")


def test_a_real_xlsx_export_keeps_final_states_and_times(imported: str) -> None:
    assert "读取 4 行" in imported
    assert "导入 4" in imported
    assert "拒绝 0" in imported
    cases = {c.external_id: c for c in Case.objects.all()}
    assert set(cases) == {f"GD202503030000{n}" for n in range(1, 5)}
    assert {c.channel for c in cases.values()} == {Channel.HOTLINE}
    closed = cases["GD2025030300001"]
    assert closed.status == Status.CLOSED
    assert closed.received_at == at(3, 9)
    assert closed.closed_at == at(4, 16)
    assert closed.result == "已劝离摊贩，恢复通行"
    assert closed.satisfaction == 4
    assert closed.lead_unit is not None
    assert closed.lead_unit.code == "CG-E"
    assert closed.grid is not None
    assert closed.grid.code == "620103002001001"
    assert closed.category.code == "SJ0502"
    assert closed.request_type == "complaint"
    assert closed.number.startswith("20250303")
    assert cases["GD2025030300002"].status == Status.IN_PROGRESS
    waiting = cases["GD2025030300003"]
    assert waiting.status == Status.NEW
    assert waiting.needs_location
    assert waiting.grid is None
    rejected = cases["GD2025030300004"]
    assert rejected.status == Status.REJECTED


def test_a_closed_case_gets_its_events_at_the_exports_times(imported: str) -> None:
    case = Case.objects.get(external_id="GD2025030300001")
    events = [
        (e.action, e.at, e.to_status)
        for e in CaseEvent.objects.filter(case=case).order_by("at", "id")
        if e.action != Action.OVERDUE
    ]
    assert events == [
        (Action.CREATE, at(3, 9), Status.NEW),
        (Action.ACCEPT, at(3, 9, 1), Status.FILED),
        (Action.DISPATCH, at(3, 9, 30), Status.DISPATCHED),
        (Action.ACKNOWLEDGE, at(3, 9, 31), Status.IN_PROGRESS),
        (Action.HANDLE, at(4, 15, 59), Status.HANDLED),
        (Action.VERIFY_PASS, at(4, 16), Status.CLOSED),
        (Action.FOLLOW_UP, at(4, 16, 1), Status.CLOSED),
    ]
    dispatch = CaseEvent.objects.get(case=case, action=Action.DISPATCH)
    assert dispatch.payload["lead_unit"] == case.lead_unit_id
    stages = list(Deadline.objects.filter(case=case).values_list("stage", "finished_at"))
    assert [s for s, _f in stages] == [
        Stage.ACCEPT,
        Stage.DISPATCH,
        Stage.ACKNOWLEDGE,
        Stage.HANDLE,
        Stage.VERIFY,
    ]
    assert all(finished is not None for _s, finished in stages)
    rejected = Case.objects.get(external_id="GD2025030300004")
    reject = CaseEvent.objects.get(case=rejected, action=Action.REJECT)
    assert reject.at == at(3, 12, 20)
    assert reject.reason == "不属于本区管辖，已告知来电人"


def test_imported_cases_count_in_the_statistics(imported: str) -> None:
    assert CaseFact.objects.count() == 4
    totals = selectors.totals(scope=None, start=date(2025, 3, 3), end=date(2025, 3, 3))
    assert totals["received"] == 4
    assert totals["closed"] == 1
    assert totals["rejected"] == 1
    assert totals["in_progress"] == 2
    assert totals["sat_4"] == 1
    # The rollups are what a rebuild from the rows gives.
    before = _snapshot()
    rebuild_rollups(date(2025, 3, 1), date(2025, 3, 31), refresh_facts=True)
    assert _snapshot() == before


def test_importing_the_same_file_again_adds_nothing(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    source = write_xlsx(tmp_path / "工单.xlsx", export_rows())
    run(str(source), "--mapping", str(wgs84_mapping))
    events = CaseEvent.objects.count()
    again = run(str(source), "--mapping", str(wgs84_mapping))
    assert "导入 0" in again
    assert "已存在跳过 4" in again
    assert Case.objects.count() == 4
    assert CaseEvent.objects.count() == events


def test_a_dry_run_writes_no_case(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    source = write_xlsx(tmp_path / "工单.xlsx", export_rows())
    out = run(str(source), "--mapping", str(wgs84_mapping), "--dry-run")
    assert "可导入 4" in out
    assert not Case.objects.exists()
    assert not CaseFact.objects.exists()


def test_steps_without_a_time_of_their_own_stay_close_to_their_neighbours() -> None:
    start = at(3, 9)
    plan: list[tuple[str, datetime | None]] = [
        ("accept", None),
        ("dispatch", None),
        ("acknowledge", None),
        ("handle", None),
        ("verify", at(3, 9, 2)),
    ]
    times = schedule(start, plan)
    assert times == sorted(set(times))
    assert start < times[0]
    assert times[-1] == at(3, 9, 2)
    # Equal times in the export are a second apart.
    same = schedule(start, [("accept", start), ("dispatch", start)])
    assert [(t - start).total_seconds() for t in same] == [1, 2]


def test_a_batch_spread_over_many_days_keeps_the_rollups_exact(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    """Enough rollup rows in one batch for the bulk upsert (COPY on PostgreSQL)."""
    lon, lat = EAST_POINT
    rows = [
        {
            "工单编号": f"GD2025-{n:03d}",
            "受理时间": datetime(2025, 1, 1, 9) + timedelta(days=n, minutes=n),
            "诉求内容": f"第 {n} 件",
            "问题分类": "占道经营" if n % 2 else "停水",
            "经度": lon,
            "纬度": lat,
            "工单状态": "已办结" if n % 3 else "办理中",
            "办结时间": datetime(2025, 1, 1, 15) + timedelta(days=n + 1) if n % 3 else "",
            "满意度": "非常满意" if n % 5 == 0 else "",
        }
        for n in range(90)
    ]
    source = write_xlsx(tmp_path / "工单.xlsx", rows)
    out = run(str(source), "--mapping", str(wgs84_mapping), "--batch", "500")
    assert "导入 90" in out
    totals = selectors.totals(scope=None, start=date(2025, 1, 1), end=date(2025, 12, 31))
    assert totals["received"] == 90
    assert totals["closed"] == 60
    before = _snapshot()
    assert len(before["GridRollup"]) > 300
    rebuild_rollups(date(2025, 1, 1), date(2025, 12, 31), refresh_facts=True)
    assert _snapshot() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the writer thread is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_batches_committed_by_the_writer_thread_hold_the_same_rows(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    """Outside a transaction, on PostgreSQL, a thread commits each batch while the
    next one is prepared: the same cases, events, deadlines and rollups."""
    source = write_xlsx(tmp_path / "工单.xlsx", export_rows())
    out = run(str(source), "--mapping", str(wgs84_mapping), "--batch", "1")
    assert "导入 4" in out
    case = Case.objects.get(external_id="GD2025030300001")
    assert [
        (e.action, e.at)
        for e in CaseEvent.objects.filter(case=case).order_by("at", "id")
        if e.action != Action.OVERDUE
    ][:3] == [
        (Action.CREATE, at(3, 9)),
        (Action.ACCEPT, at(3, 9, 1)),
        (Action.DISPATCH, at(3, 9, 30)),
    ]
    assert Deadline.objects.filter(case=case).count() == 5
    assert CaseFact.objects.count() == 4
    before = _snapshot()
    rebuild_rollups(date(2025, 3, 1), date(2025, 3, 31), refresh_facts=True)
    assert _snapshot() == before
    again = run(str(source), "--mapping", str(wgs84_mapping), "--batch", "1")
    assert "已存在跳过 4" in again


def test_tracking_codes_are_drawn_uniformly_from_the_alphabet() -> None:
    codes = _random_codes(4000)
    assert len(codes) == 4000
    assert all(len(code) == 10 and set(code) <= set(TRACKING_ALPHABET) for code in codes)
    assert len(set(codes)) == 4000
    # 40,000 characters over 32: about 1,250 each (a deviation of 35); far outside
    # ±300 only if the draw were biased.
    counts = Counter("".join(codes))
    assert set(counts) == set(TRACKING_ALPHABET)
    assert all(abs(n - 1250) < 300 for n in counts.values())
    assert _random_codes(0) == []


def test_the_garbage_collector_runs_less_often_while_importing_as_before_after() -> None:
    before = gc.get_threshold()
    with _fewer_collections():
        during = gc.get_threshold()
        assert all(d >= max(b, t) for d, b, t in zip(during, before, GC_THRESHOLDS, strict=True))
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), _fewer_collections():
        raise RuntimeError
    assert gc.get_threshold() == before


def test_the_analyzer_refreshes_the_case_statistics_each_time_the_import_doubles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analyzer = writer.Analyzer(enabled=False)
    analyzer.enabled = True
    analyzed: list[tuple[int, tuple[str, ...]]] = []
    imported = 0
    monkeypatch.setattr(
        writer.Analyzer,
        "_analyze",
        staticmethod(
            lambda *models: analyzed.append((imported, tuple(m.__name__ for m in models)))
        ),
    )
    for imported in range(0, 460_001, 5_000):
        analyzer.grown(imported)
    analyzer.finished(imported)
    assert analyzed == [
        (50_000, ("Case",)),
        (100_000, ("Case",)),
        (200_000, ("Case",)),
        (400_000, ("Case",)),
        (460_000, ("Case", "CaseEvent", "Deadline", "CaseFact", "PersonFact")),
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ANALYZE of PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_historical_import_leaves_the_tables_it_wrote_analysed(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    tables = ["cases_case", "cases_caseevent", "cases_deadline", "stats_casefact"]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM {table}")
    source = write_xlsx(tmp_path / "工单.xlsx", export_rows())
    assert "导入 4" in run(str(source), "--mapping", str(wgs84_mapping))
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [tables])
        estimates = dict(cursor.fetchall())
    assert estimates["cases_case"] == Case.objects.count()
    assert estimates["cases_caseevent"] == CaseEvent.objects.count()
    assert estimates["cases_deadline"] == Deadline.objects.count()
    assert estimates["stats_casefact"] == CaseFact.objects.count() == 4

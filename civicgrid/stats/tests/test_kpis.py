"""Every measure and KPI on a small example computed by hand.

Six cases are taken in on Monday 2024-03-04 at 09:00 (winter office hours 08:30–12:00
and 14:00–17:30; default time limits: accept and dispatch 1 工作时, acknowledge 2
工作时, handle 5 工作日, verify 1 工作日) and moved through the real services at
fixed moments (time-machine):

- A (hotline): accepted 09:10, dispatched 09:20, acknowledged 09:30, handled 11:00,
  verification fails 11:30 (rework), handled 14:30, verified 15:00 → closed after
  6 h; follow-up: 5 (非常满意).
- B (hotline): accepted 09:30, dispatched to the wrong unit 09:40, sent back 10:00,
  re-dispatched 10:20, acknowledged 10:30 (handle due Mon 11 Mar 17:30); the sweep
  of Tue 12 Mar 09:00 marks it overdue; handled 10:00, verification fails 11:00,
  handled 15:00, verified 16:00 → closed; follow-up Wed 13 Mar: 2 (不满意),
  reopened → in progress again.
- C (hotline): accepted 09:15, dispatched 09:25, acknowledged 09:35, asks for 2 more
  working days Tue 5 Mar 10:00, approved 10:30 (due Wed 13 Mar 17:30), handled Tue
  12 Mar 10:00, verified 11:00 → closed after 194 h; follow-up: 4 (满意).
- D (hotline): accepted 09:20, parked 10:00 (挂账) → in progress (parked).
- E (hotline): rejected 09:05 (不予受理).
- F (a grid worker's own report, filed at once): dispatched 09:30, acknowledged
  09:40, handled 10:40, verified 11:00 → closed after 2 h.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Category, Channel
from civicgrid.cases.tests.fixtures import EAST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.stats import conf, direct, selectors
from civicgrid.stats.evaluations import composite
from civicgrid.stats.measures import percentile_hours

SH = ZoneInfo("Asia/Shanghai")
MARCH = (date(2024, 3, 1), date(2024, 3, 31))


@pytest.fixture(autouse=True)
def _calendar_read_once(settings: Settings) -> None:
    """The work calendar does not change during these tests: read it once, not on
    every deadline computed (the root conftest rechecks it on every call)."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture
def story(
    new_case: IntakeFactory,
    category: Category,
    call_taker: User,
    dispatcher: User,
    supervisor: User,
    unit_handler: User,
    west_handler: User,
    east_worker: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> dict[str, int]:
    s = services

    def act(when: datetime, fn: Callable[..., Any], **kwargs: Any) -> Any:
        with time_machine.travel(when, tick=False):
            return fn(**kwargs)

    def get(case: Case) -> Case:
        return Case.objects.get(pk=case.pk)

    cases = {name: act(at(4, 9, 0), new_case) for name in "ABCDE"}
    with time_machine.travel(at(4, 9, 0), tick=False):
        cases["F"], _ = s.create_case(
            data=s.Intake(
                channel=Channel.GRID_WORKER,
                category=category,
                description="桥下有人占道摆摊",
                lon=EAST_POINT[0],
                lat=EAST_POINT[1],
            ),
            actor=east_worker,
        )
    a, b, c, d, e, f = (cases[n] for n in "ABCDEF")
    ct, dp, uh, gw, sup = call_taker, dispatcher, unit_handler, east_worker, supervisor
    # In the order of the clock, so that the sweep sees what was open at its time.
    act(at(4, 9, 5), s.reject_case, case=e, actor=ct, reason="不属于受理范围")
    act(at(4, 9, 10), s.accept_case, case=a, actor=ct)
    act(at(4, 9, 15), s.accept_case, case=c, actor=ct)
    act(at(4, 9, 20), s.dispatch_case, case=get(a), actor=dp, unit=city_unit)
    act(at(4, 9, 20), s.accept_case, case=d, actor=ct)
    act(at(4, 9, 25), s.dispatch_case, case=get(c), actor=dp, unit=city_unit)
    act(at(4, 9, 30), s.acknowledge_case, case=get(a), actor=uh)
    act(at(4, 9, 30), s.accept_case, case=b, actor=ct)
    act(at(4, 9, 30), s.dispatch_case, case=f, actor=dp, unit=city_unit)
    act(at(4, 9, 35), s.acknowledge_case, case=get(c), actor=uh)
    act(at(4, 9, 40), s.dispatch_case, case=get(b), actor=dp, unit=west_unit)
    act(at(4, 9, 40), s.acknowledge_case, case=get(f), actor=uh)
    act(at(4, 10, 0), s.send_back_case, case=get(b), actor=west_handler, reason="非我单位")
    act(at(4, 10, 0), s.park_case, case=get(d), actor=sup, reason="待道路改造")
    act(at(4, 10, 20), s.dispatch_case, case=get(b), actor=dp, unit=city_unit)
    act(at(4, 10, 30), s.acknowledge_case, case=get(b), actor=uh)
    act(at(4, 10, 40), s.handle_case, case=get(f), actor=uh, result="已劝离")
    act(at(4, 11, 0), s.handle_case, case=get(a), actor=uh, result="已劝离")
    act(at(4, 11, 0), s.verify_case, case=get(f), actor=gw, passed=True)
    act(at(4, 11, 30), s.verify_case, case=get(a), actor=gw, passed=False, note="仍有")
    act(at(4, 14, 30), s.handle_case, case=get(a), actor=uh, result="已清理")
    act(at(4, 15, 0), s.verify_case, case=get(a), actor=gw, passed=True)
    act(at(5, 10, 0), s.follow_up_case, case=get(a), actor=ct, satisfaction=5)
    act(
        at(5, 10, 0),
        s.request_extension,
        case=get(c),
        actor=uh,
        reason="需协调",
        extra_amount=Decimal(2),
    )
    act(at(5, 10, 30), s.decide_extension, case=get(c), actor=sup, approve=True)
    # B's handling was due on Monday 11 March at 17:30.
    assert services.mark_overdue(now=at(12, 9, 0)) == 1
    act(at(12, 10, 0), s.handle_case, case=get(b), actor=uh, result="已处理")
    act(at(12, 10, 0), s.handle_case, case=get(c), actor=uh, result="已处理")
    act(at(12, 11, 0), s.verify_case, case=get(b), actor=gw, passed=False, note="未改")
    act(at(12, 11, 0), s.verify_case, case=get(c), actor=gw, passed=True)
    act(at(12, 15, 0), s.handle_case, case=get(b), actor=uh, result="已整改")
    act(at(12, 16, 0), s.verify_case, case=get(b), actor=gw, passed=True)
    act(at(13, 10, 0), s.follow_up_case, case=get(b), actor=ct, satisfaction=2)
    act(at(13, 10, 0), s.follow_up_case, case=get(c), actor=ct, satisfaction=4)
    act(at(13, 10, 5), s.reopen_case, case=get(b), actor=ct, reason="不满意")
    return {name: case.pk for name, case in cases.items()}


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-9)


@pytest.mark.usefixtures("story")
def test_the_case_measures_are_the_hand_computed_ones(tree: Tree) -> None:
    m = selectors.totals(scope=tree.district, start=MARCH[0], end=MARCH[1])

    assert (m["received"], m["closed"], m["in_progress"], m["rejected"]) == (6, 3, 2, 1)
    assert (m["parked"], m["deferred"], m["overdue"], m["overdue_open"]) == (1, 0, 1, 0)
    # 应结案 = 6 received − 1 rejected; closed A, C, F, none of them ever late.
    assert m["due_to_close"] == 5
    assert m["close_rate"] == approx(3 / 5)
    assert m["ontime_close_rate"] == approx(3 / 5)
    assert m["ontime_finish_rate"] == approx(3 / 3)
    assert m["overdue_rate"] == approx(1 / 6)
    # Stages: accept A B C D E; dispatch A B B C F; acknowledge A B(sent back) B C F;
    # handle A A B(late) B C F; verify A A B B C F.
    assert m["accept_ontime_rate"] == approx(5 / 5)
    assert m["dispatch_ontime_rate"] == approx(5 / 5)
    assert m["acknowledge_ontime_rate"] == approx(5 / 5)
    assert m["handle_ontime_rate"] == approx(5 / 6)
    assert m["verify_ontime_rate"] == approx(6 / 6)
    # Handling time of A (6 h), C (194 h), F (2 h); percentiles interpolate in the
    # histogram buckets (4, 8] and (168, 240].
    assert m["mean_hours"] == approx((6 + 194 + 2) / 3)
    assert m["median_hours"] == approx(4 + 4 * 0.5)
    assert m["p90_hours"] == approx(168 + 72 * 0.7)
    assert (m["dispatches"], m["sent_back"], m["handled"], m["reworked"]) == (5, 1, 6, 2)
    assert m["send_back_rate"] == approx(1 / 5)
    assert m["rework_rate"] == approx(2 / 6)
    assert m["accurate_dispatch_rate"] == approx(4 / 5)
    assert (m["extensions"], m["urged"]) == (1, 0)
    assert m["extension_rate"] == approx(1 / 6)
    # Followed up A (5), B (2), C (4) of the 4 ever closed (A, B, C, F).
    assert (m["followed_up"], m["sat_5"], m["sat_4"], m["sat_2"]) == (3, 1, 1, 1)
    assert m["follow_up_rate"] == approx(3 / 4)
    assert m["satisfaction_rate"] == approx(2 / 3)
    assert m["satisfaction_score"] == approx((100 + 80 + 30) / 3)
    assert (m["reopened"], m["reopen_rate"]) == (1, approx(1 / 4))
    # 监督举报率: the filed cases A B C D F, of which the public reported A B C D.
    assert (m["filed"], m["supervision_rate"]) == (5, approx(4 / 5))


@pytest.mark.usefixtures("story")
def test_the_settings_change_what_counts(tree: Tree, settings: Settings) -> None:
    settings.CIVICGRID_STATS = {
        "denominators": {"exclude_parked": True},
        "satisfied_levels": [2, 3, 4, 5],
        "accurate_dispatch": "minus_rework",
    }
    m = selectors.totals(scope=tree.district, start=MARCH[0], end=MARCH[1])

    assert m["due_to_close"] == 4  # D, parked, is left out
    assert m["close_rate"] == approx(3 / 4)
    assert m["satisfaction_rate"] == approx(3 / 3)
    # The rounds of A's dispatch and of B's re-dispatch were reworked.
    assert m["accurate_dispatch_rate"] == approx((5 - 2) / 5)


@pytest.mark.usefixtures("story")
def test_units_areas_positions_and_the_hotline_are_evaluated_by_hand(
    tree: Tree,
    city_unit: HandlingUnit,
    call_taker: User,
    dispatcher: User,
    east_worker: User,
    unit_handler: User,
    west_handler: User,
) -> None:
    start, end = MARCH
    units = selectors.unit_evaluation(scope=tree.district, start=start, end=end)
    # The city unit leads A, B, C and F (B came back from the west unit).
    assert [u["unit_id"] for u in units] == [city_unit.pk]
    unit = units[0]
    assert (unit["received"], unit["closed"], unit["volume"]) == (4, 3, 1.0)
    assert unit["close_rate"] == approx(3 / 4)
    assert unit["ontime_handle_rate"] == approx(5 / 6)
    assert unit["no_rework_rate"] == approx(1 - 2 / 6)
    # 10 × volume + 30 × 结案率 + 30 × 按期处置率 + 30 × (1 − 返工率)
    assert unit["score"] == approx(round(10 + 30 * 0.75 + 30 * 5 / 6 + 30 * (1 - 2 / 6), 2))
    assert (unit["band"], unit["rank"]) == ("合格", 1)

    areas = {
        a["code"]: a for a in selectors.area_evaluation(parent=tree.district, start=start, end=end)
    }
    assert areas["620103002"]["close_rate"] == approx(3 / 5)
    assert areas["620103002"]["score"] == approx(60.0)
    assert areas["620103001"]["received"] == 0
    assert areas["620103001"]["score"] is None

    def person(role: str, user: User) -> dict[str, Any]:
        rows = selectors.position_evaluation(scope=tree.district, start=start, end=end, role=role)
        return next(r for r in rows if r["user_id"] == user.pk)

    taker = person("call_taker", call_taker)
    assert (taker["reports"], taker["accepts"], taker["rejects"], taker["follow_ups"]) == (
        5,
        4,
        1,
        3,
    )
    assert taker["accept_ontime_rate"] == approx(5 / 5)
    assert taker["valid_report_rate"] == approx(4 / 5)
    assert taker["score"] == approx(100.0)
    sender = person("dispatcher", dispatcher)
    assert (sender["dispatches"], sender["dispatch_ontime_rate"]) == (5, approx(1.0))
    assert sender["accurate_dispatch_rate"] == approx(4 / 5)
    assert sender["score"] == approx(50 * 1.0 + 50 * 0.8)
    worker = person("grid_worker", east_worker)
    assert (worker["reports"], worker["valid_reports"], worker["verifies"]) == (1, 1, 6)
    assert (worker["verify_fails"], worker["verify_ontime_rate"]) == (2, approx(1.0))
    handler = person("unit_handler", unit_handler)
    assert (handler["acknowledges"], handler["handles"]) == (4, 6)
    assert handler["acknowledge_ontime_rate"] == approx(4 / 4)
    assert handler["handle_ontime_rate"] == approx(5 / 6)
    other = person("unit_handler", west_handler)
    assert (other["send_backs"], other["acknowledge_timed"], other["acknowledge_ontime"]) == (
        1,
        1,
        1,
    )

    kpis = selectors.hotline_kpis(scope=tree.district, start=start, end=end)
    # The hotline's A B C D E: closed A C; 应结案 = 5 − 1 rejected.
    assert (kpis["received"], kpis["closed"], kpis["in_progress"]) == (5, 2, 2)
    assert kpis["close_rate"] == approx(2 / 4)
    assert kpis["acknowledge_ontime_rate"] == approx(4 / 4)
    assert kpis["ontime_finish_rate"] == approx(2 / 2)
    assert kpis["follow_up_rate"] == approx(3 / 3)
    assert kpis["satisfaction_rate"] == approx(2 / 3)
    assert kpis["reopen_rate"] == approx(1 / 3)


@pytest.mark.usefixtures("story")
def test_breakdowns_trends_and_grids_add_up_to_the_totals(
    tree: Tree, city_unit: HandlingUnit
) -> None:
    start, end = MARCH
    by_channel = {
        r["key"]: r
        for r in selectors.breakdown(scope=tree.district, start=start, end=end, by="channel")
    }
    assert (by_channel["hotline"]["received"], by_channel["grid_worker"]["received"]) == (5, 1)
    by_unit = selectors.breakdown(scope=tree.district, start=start, end=end, by="unit")
    assert [(r["key"], r["received"]) for r in by_unit] == [(city_unit.pk, 4), (0, 2)]
    domains = selectors.breakdown(scope=tree.district, start=start, end=end, by="domain")
    assert [(d["key"], d["received"]) for d in domains] == [("urban", 6), ("public_service", 0)]
    trend = selectors.trend(scope=tree.district, start=start, end=end, grain="week")
    assert [(t["period"], t["received"]) for t in trend][:2] == [
        (date(2024, 2, 26), 0),
        (date(2024, 3, 4), 6),
    ]
    assert len(selectors.trend(scope=tree.district, start=start, end=end)) == 31
    grids = {
        g["code"]: g
        for g in selectors.grid_values(parent=tree["620103002001"], start=start, end=end)
    }
    assert (grids["620103002001001"]["received"], grids["620103002001002"]["received"]) == (6, 0)
    assert selectors.units_involved(scope=tree.district, start=start, end=end) == 1
    # The same figures straight from the cases (no rollups).
    assert direct.case_counters(scope=tree.district, start=start, end=end)[()]["received"] == 6


def test_a_composite_score_reweights_what_has_data() -> None:
    assert composite({"a": 1.0, "b": 0.5}, {"a": 1, "b": 3}) == approx(100 * (1 + 1.5) / 4)
    assert composite({"a": None, "b": 0.5}, {"a": 1, "b": 3}) == approx(50.0)
    assert composite({"a": None}, {"a": 1}) is None


def test_percentiles_interpolate_inside_the_histogram() -> None:
    histogram = [0] * 19
    assert percentile_hours(histogram, 0.5) is None
    histogram[0] = 2  # two cases of at most an hour
    histogram[2] = 2  # two of 2–4 h
    assert percentile_hours(histogram, 0.5) == approx(1.0)
    assert percentile_hours(histogram, 0.75) == approx(3.0)
    histogram[18] = 4  # four of more than 2,160 h: the open bucket gives its lower bound
    assert percentile_hours(histogram, 0.9) == approx(2160.0)


def test_settings_and_a_config_file_override_the_defaults(
    settings: Settings, tmp_path: Any
) -> None:
    path = tmp_path / "stats.json"
    path.write_text(
        json.dumps(
            {
                "unit_weights": {"close_rate": 1},
                "bands": [{"min": 50, "name": "达标", "color": "#000000"}],
            }
        ),
        encoding="utf-8",
    )
    settings.CIVICGRID_STATS = {"satisfied_levels": [5], "unit_weights": {"volume": 0}}
    settings.CIVICGRID_STATS_CONFIG = str(path)

    assert conf.get("satisfied_levels") == [5]
    # Nested dicts merge key by key: defaults, then the settings, then the file.
    assert conf.get("unit_weights") == {
        "volume": 0,
        "close_rate": 1,
        "ontime_handle_rate": 30,
        "no_rework_rate": 30,
    }
    band = conf.band_of(55)
    assert band is not None
    assert (band.name, band.color) == ("达标", "#000000")
    assert conf.band_of(10) is None

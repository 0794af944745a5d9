from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import routing, services
from civicgrid.cases.errors import IntakeError
from civicgrid.cases.models import Case, Category, CategoryKind, Channel, RoutingRule, Status
from civicgrid.cases.selectors import possible_duplicates
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT, IntakeFactory
from civicgrid.grids import crs
from civicgrid.grids.models import HandlingUnit, UnitKind
from civicgrid.grids.services import create_handling_unit
from civicgrid.grids.tests.fixtures import Tree


def test_a_hotline_case_is_located_numbered_and_waits_for_acceptance(
    new_case: IntakeFactory, tree: Tree
) -> None:
    case = new_case(external_id="12345-0001")
    assert case.status == Status.NEW
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.grid_path == case.grid.path
    assert case.number.startswith(timezone.localtime(case.received_at).strftime("%Y%m%d"))
    assert len(case.tracking_code) == 10
    event = case.events.get()
    assert event.action == "create"
    assert event.to_status == Status.NEW
    assert case.deadlines.get().stage == "accept"


def test_the_same_channel_and_external_id_never_make_a_second_case(
    new_case: IntakeFactory,
) -> None:
    first = new_case(external_id="12345-0002")
    second = new_case(external_id="12345-0002", description="重复推送")
    assert first.pk == second.pk
    assert Case.objects.count() == 1
    # Another channel may reuse the number.
    other = new_case(external_id="12345-0002", channel=Channel.API)
    assert other.pk != first.pk


def test_the_same_idempotency_key_never_makes_a_second_case(new_case: IntakeFactory) -> None:
    first = new_case(idempotency_key="k-1")
    again = new_case(idempotency_key="k-1")
    assert first.pk == again.pk
    assert Case.objects.count() == 1


def test_a_point_outside_the_jurisdiction_is_refused(new_case: IntakeFactory) -> None:
    with pytest.raises(IntakeError, match="不在辖区内"):
        new_case(lon=OUTSIDE_POINT[0], lat=OUTSIDE_POINT[1])
    assert not Case.objects.exists()


def test_a_case_without_coordinates_is_kept_for_manual_location(
    new_case: IntakeFactory, call_taker: User
) -> None:
    case = new_case(lon=None, lat=None, address="七里河桥环岛")
    assert case.needs_location
    assert case.grid is None
    with pytest.raises(Exception, match="尚未定位"):
        services.accept_case(case=case, actor=call_taker)
    case = services.locate_case(case=case, actor=call_taker, lon=EAST_POINT[0], lat=EAST_POINT[1])
    assert not case.needs_location
    assert case.grid is not None
    assert services.accept_case(case=case, actor=call_taker).status == Status.FILED


def test_a_gcj02_location_is_converted_and_located(new_case: IntakeFactory) -> None:
    gcj_lon, gcj_lat = crs.from_storage(EAST_POINT[0], EAST_POINT[1], crs.GCJ02)
    case = new_case(lon=gcj_lon, lat=gcj_lat, crs="gcj02")
    assert case.input_crs == crs.GCJ02
    assert case.lon == pytest.approx(EAST_POINT[0], abs=1e-6)
    assert case.lat == pytest.approx(EAST_POINT[1], abs=1e-6)


def test_a_grid_workers_own_report_is_filed_directly(category: Category, east_worker: User) -> None:
    case, created = services.create_case(
        data=services.Intake(
            channel=Channel.GRID_WORKER,
            category=category,
            description="巡查发现占道经营",
            lon=EAST_POINT[0],
            lat=EAST_POINT[1],
        ),
        actor=east_worker,
    )
    assert created
    assert case.status == Status.FILED
    assert case.deadlines.get().stage == "dispatch"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("description", "  ", "问题描述"),
        ("urgency", "panic", "紧急程度"),
        ("channel", "fax", "来源渠道"),
        ("request_type", "gossip", "诉求类型"),
        ("lat", None, "同时提供"),
    ],
)
def test_bad_intake_is_refused_with_a_clear_message(
    new_case: IntakeFactory, field: str, value: object, message: str
) -> None:
    with pytest.raises(IntakeError, match=message):
        new_case(**{field: value})
    assert not Case.objects.exists()


def test_a_major_category_is_refused(new_case: IntakeFactory, category: Category) -> None:
    assert category.parent is not None
    with pytest.raises(IntakeError, match="小类"):
        new_case(category=category.parent)


def test_routing_prefers_the_deepest_rule_then_the_default_then_the_territory(
    new_case: IntakeFactory, category: Category, tree: Tree, city_unit: HandlingUnit
) -> None:
    bureau = create_handling_unit(
        code="CGJ", name="城市管理局", kind=UnitKind.BUREAU, serves=tree.district
    )
    # No rule, no default: the unit serving the smallest part of the tree around the case.
    assert new_case().suggested_unit == city_unit
    suggestion = routing.suggest(category=category, grid=tree["620103002001001"])
    assert suggestion is not None
    assert suggestion.source == "territorial"
    # The category's default unit, when it serves the place.
    Category.objects.filter(pk=category.pk).update(default_unit=bureau)
    category.refresh_from_db()
    assert new_case(description="b").suggested_unit == bureau
    # A rule on the major category for the district, then a deeper one for the east.
    assert category.parent is not None
    district_rule = RoutingRule.objects.create(
        category=category.parent, grid=tree.district, lead_unit=bureau
    )
    east_rule = RoutingRule.objects.create(category=category, grid=tree.east, lead_unit=city_unit)
    east_rule.assisting_units.add(bureau)
    suggestion = routing.suggest(category=category, grid=tree["620103002001001"])
    assert suggestion is not None
    assert (suggestion.lead, suggestion.assisting, suggestion.rule_id) == (
        city_unit,
        [bureau],
        east_rule.pk,
    )
    west = routing.suggest(category=category, grid=tree.grid_a1)
    assert west is not None
    assert west.rule_id == district_rule.pk


def test_possible_duplicates_are_the_same_category_nearby_and_recent(
    new_case: IntakeFactory, category: Category
) -> None:
    original = new_case()
    near = (EAST_POINT[0] + 0.0003, EAST_POINT[1])  # about 27 m east
    found = possible_duplicates(category=category, lon=near[0], lat=near[1], at=timezone.now())
    assert [c.pk for c, _d in found] == [original.pk]
    assert 20 < found[0][1] < 35
    far = possible_duplicates(
        category=category, lon=EAST_POINT[0] + 0.01, lat=EAST_POINT[1], at=timezone.now()
    )
    assert far == []
    later = possible_duplicates(
        category=category, lon=near[0], lat=near[1], at=timezone.now() + timedelta(days=5)
    )
    assert later == []
    other = Category.objects.create(
        code="X1", name="其他", kind=CategoryKind.EVENT, parent=category.parent
    )
    assert possible_duplicates(category=other, lon=near[0], lat=near[1], at=timezone.now()) == []

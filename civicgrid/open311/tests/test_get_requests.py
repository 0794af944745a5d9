from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import services as case_services
from civicgrid.cases.models import Case, Category, Channel, Status
from civicgrid.cases.tests.fixtures import EAST_POINT, IntakeFactory
from civicgrid.grids import services as grid_services
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree, box
from civicgrid.grids.validation import GridInput
from civicgrid.open311.tests.conftest import (
    REQUEST_FIELDS,
    Key,
    Open311Client,
    check_error,
    children,
    validate,
    xml_root,
)

pytestmark = pytest.mark.django_db

STAFF_NAMES = ["王敏", "刘芳", "陈静", "马军", "吴刚"]
CLOSED = {Status.CLOSED, Status.REJECTED, Status.VOIDED, Status.MERGED}


def listed(o311: Open311Client, **params: Any) -> list[dict[str, Any]]:
    response = o311.get("requests", **params)
    assert response.status_code == 200, response.content
    body = response.json()
    validate("requests.json", body)
    return body


def test_requests_are_listed_per_the_schema_newest_first(
    o311: Open311Client, drive: Callable[[str], Case], city_unit: HandlingUnit
) -> None:
    working = drive(Status.IN_PROGRESS)
    done = drive(Status.CLOSED)
    body = listed(o311)
    assert [r["service_request_id"] for r in body] == [done.number, working.number]
    closed, open_ = body
    assert open_["status"] == "open"
    assert closed["status"] == "closed"
    assert open_["service_code"] == "T0502"
    assert open_["service_name"] == "占道经营（测试）"
    assert open_["agency_responsible"] == city_unit.name
    assert open_["lat"] == EAST_POINT[1]
    assert open_["long"] == EAST_POINT[0]
    assert open_["expected_datetime"] is not None  # the handling deadline
    assert open_["requested_datetime"].endswith("+08:00")
    assert closed["status_notes"] == "已劝离摊贩，恢复通行"  # the latest public reason
    assert closed["updated_datetime"] == closed["updated_datetime"]
    assert set(open_) == set(REQUEST_FIELDS)


def test_the_requests_xml_has_the_specifications_elements(
    o311: Open311Client, drive: Callable[[str], Case]
) -> None:
    drive(Status.IN_PROGRESS)
    drive(Status.NEW)
    root = xml_root(o311.get("requests", "xml"), "service_requests")
    assert len(root) == 2
    for request in root:
        assert request.tag == "request"
        assert children(request) == REQUEST_FIELDS
    assert root[1].findtext("status") == "open"
    assert root[1].findtext("zipcode") is None or root[1].findtext("zipcode") == ""


def test_an_empty_list_is_an_empty_array_and_an_empty_element(
    o311: Open311Client, tree: Tree
) -> None:
    assert listed(o311) == []
    root = xml_root(o311.get("requests", "xml"), "service_requests")
    assert len(root) == 0


@pytest.mark.parametrize("status", list(Status))
def test_every_case_status_maps_to_open_or_closed(
    o311: Open311Client, drive: Callable[[str], Case], status: Status
) -> None:
    case = drive(status)
    [found] = listed(o311, service_request_id=case.number)
    assert found["status"] == ("closed" if status in CLOSED else "open")


def test_public_output_carries_no_staff_names_and_no_requesters_data(
    o311: Open311Client,
    drive: Callable[[str], Case],
    new_case: IntakeFactory,
    call_taker: User,
) -> None:
    drive(Status.CLOSED)
    rejected = new_case(description="张先生（电话 13912345678，身份证 62010319800101123X）反映占道")
    case_services.reject_case(
        case=rejected, actor=call_taker, reason="刘芳已致电张先生 0931-8881234，不属于受理范围"
    )
    for params in ({}, {"extensions": "true"}):
        text = json.dumps(listed(o311, **params), ensure_ascii=False)
        xml = o311.get("requests", "xml", **params).content.decode()
        for body in (text, xml):
            for private in ["张先生", "13912345678", "62010319800101123X", "0931-8881234"]:
                assert private not in body
            for name in STAFF_NAMES:
                assert name not in body
    [found] = listed(o311, service_request_id=rejected.number)
    assert found["status_notes"] == "***已致电*** ***，不属于受理范围"


def test_confidential_cases_are_not_published(o311: Open311Client, new_case: IntakeFactory) -> None:
    secret = new_case(is_confidential=True)
    new_case()
    assert secret.number not in {r["service_request_id"] for r in listed(o311)}
    check_error(o311.get(f"requests/{secret.number}"), 404)


def test_service_request_ids_override_the_other_filters(
    o311: Open311Client, new_case: IntakeFactory
) -> None:
    old = new_case(received_at=timezone.now() - timedelta(days=200))
    recent = new_case()
    new_case()
    body = listed(o311, service_request_id=f"{old.number},{recent.number},nope", status="closed")
    assert {r["service_request_id"] for r in body} == {old.number, recent.number}


def test_too_many_ids_are_400(o311: Open311Client, tree: Tree) -> None:
    ids = ",".join(str(n) for n in range(201))
    [description] = check_error(o311.get("requests", service_request_id=ids), 400)
    assert "200" in description
    assert (
        o311.get("requests", service_request_id=",".join(ids.split(",")[:200])).status_code == 200
    )


def test_service_codes_and_status_filter_the_list(
    o311: Open311Client, drive: Callable[[str], Case], new_case: IntakeFactory
) -> None:
    closed = drive(Status.CLOSED)
    working = drive(Status.IN_PROGRESS)
    other = new_case(category=Category.objects.get(code="BJ0101"), description="井盖丢失")
    assert {r["service_request_id"] for r in listed(o311, service_code="BJ0101")} == {other.number}
    both = listed(o311, service_code="BJ0101,T0502")
    assert len(both) == 3
    assert {r["service_request_id"] for r in listed(o311, status="closed")} == {closed.number}
    assert {r["service_request_id"] for r in listed(o311, status="open")} == {
        working.number,
        other.number,
    }
    assert len(listed(o311, status="open,closed")) == 3
    check_error(o311.get("requests", status="pending"), 400)
    check_error(o311.get("requests", service_code="NOPE"), 404)
    check_error(o311.get("requests", "xml", service_code="BJ0101,NOPE"), 404, "xml")


def test_the_default_window_is_the_last_90_days(
    o311: Open311Client, new_case: IntakeFactory
) -> None:
    now = timezone.now()
    old = new_case(received_at=now - timedelta(days=100))
    recent = new_case(received_at=now - timedelta(days=10))
    assert [r["service_request_id"] for r in listed(o311)] == [recent.number]
    start = (now - timedelta(days=120)).isoformat()
    end = (now - timedelta(days=40)).isoformat()
    assert [r["service_request_id"] for r in listed(o311, start_date=start, end_date=end)] == [
        old.number
    ]
    # Only a start: 90 days from it; only an end: 90 days up to it.
    assert [r["service_request_id"] for r in listed(o311, start_date=start)] == [old.number]
    day = (now - timedelta(days=95)).date().isoformat()
    assert [r["service_request_id"] for r in listed(o311, end_date=day)] == [old.number]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_dates_are_400(o311: Open311Client, tree: Tree, fmt: str) -> None:
    check_error(o311.get("requests", fmt, start_date="yesterday"), 400, fmt)
    check_error(o311.get("requests", fmt, end_date="2026-13-40"), 400, fmt)
    [wide] = check_error(
        o311.get("requests", fmt, start_date="2026-01-01T00:00:00+08:00", end_date="2026-06-01"),
        400,
        fmt,
    )
    assert "90" in wide
    check_error(
        o311.get("requests", fmt, start_date="2026-03-01T00:00:00Z", end_date="2026-02-01"),
        400,
        fmt,
    )


def _bulk(category: Category, grid_path: str, count: int, start: int = 0) -> None:
    now = timezone.now()
    Case.objects.bulk_create(
        Case(
            number=f"B{i:09d}",
            tracking_code=f"BULK{i:06d}",
            channel=Channel.HOTLINE,
            category=category,
            description="批量",
            grid_path=grid_path,
            received_at=now - timedelta(minutes=i),
        )
        for i in range(start, start + count)
    )


def test_at_most_1000_rows_and_pages_of_page_size(
    o311: Open311Client, tree: Tree, category: Category
) -> None:
    _bulk(category, tree.grid_a1.path, 1005)
    first = listed(o311)
    assert len(first) == 1000
    assert first[0]["service_request_id"] == "B000000000"
    second = listed(o311, page="2")
    assert [r["service_request_id"] for r in second] == [f"B{i:09d}" for i in range(1000, 1005)]
    small = listed(o311, page="3", page_size="10")
    assert [r["service_request_id"] for r in small] == [f"B{i:09d}" for i in range(20, 30)]
    check_error(o311.get("requests", page_size="1001"), 400)
    check_error(o311.get("requests", page="0"), 400)
    check_error(o311.get("requests", page="two"), 400)


def test_the_list_takes_the_same_queries_for_3_or_30_requests(
    o311: Open311Client, tree: Tree, drive: Callable[[str], Case], category: Category
) -> None:
    drive(Status.CLOSED)
    _bulk(category, tree.grid_a1.path, 2)
    with CaptureQueriesContext(connection) as few:
        assert len(listed(o311, extensions="true")) == 3
    _bulk(category, tree.grid_a1.path, 27, start=100)
    with CaptureQueriesContext(connection) as many:
        assert len(listed(o311, extensions="true")) == 30
    assert len(few) == len(many)


def test_extensions_add_the_status_label_grid_path_and_public_notes(
    o311: Open311Client, drive: Callable[[str], Case]
) -> None:
    case = drive(Status.IN_PROGRESS)
    [found] = listed(o311, extensions="true")
    extended = found["extended_attributes"]
    assert extended["status_label"] == "处置中"
    assert extended["channel"] == "hotline"
    assert [g["code"] for g in extended["grid_path"]] == [
        "620103",
        "620103002",
        "620103002001",
        "620103002001001",
    ]
    assert [n["type"] for n in found["notes"]] == ["create", "accept", "dispatch", "acknowledge"]
    assert all(n["datetime"].endswith("+08:00") for n in found["notes"])
    root = xml_root(
        o311.get(f"requests/{case.number}", "xml", extensions="true"), "service_requests"
    )
    request = root[0]
    assert children(request) == [*REQUEST_FIELDS, "extended_attributes", "notes"]
    assert children(request.find("extended_attributes")) == [  # type: ignore[arg-type]
        "status_label",
        "channel",
        "urgency",
        "grid_path",
        "attributes",
    ]
    grids = request.find("extended_attributes/grid_path")
    assert grids is not None
    assert {g.tag for g in grids} == {"grid"}
    notes = request.find("notes")
    assert notes is not None
    assert next(children(n) for n in notes) == [
        "datetime",
        "description",
        "type",
    ]


def test_one_request_is_a_list_of_one(o311: Open311Client, drive: Callable[[str], Case]) -> None:
    case = drive(Status.HANDLED)
    body = o311.get(f"requests/{case.number}").json()
    validate("requests.json", body)
    [found] = body
    assert found["service_request_id"] == case.number
    assert found["status"] == "open"
    root = xml_root(o311.get(f"requests/{case.number}", "xml"), "service_requests")
    assert [children(r) for r in root] == [REQUEST_FIELDS]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_request_is_404(o311: Open311Client, tree: Tree, fmt: str) -> None:
    check_error(o311.get("requests/20260101000001", fmt), 404, fmt)


def test_requests_of_another_district_are_not_listed_in_this_one(
    o311: Open311Client, new_case: IntakeFactory, app_key: Key
) -> None:
    here = new_case()
    [other] = grid_services.save_grids(
        items=[GridInput(code="620104", name="第二区", level=0, geometry=box(104, 35, 104.2, 35.1))]
    )
    there = new_case(lon=104.1, lat=35.05)
    assert {r["service_request_id"] for r in listed(o311)} == {here.number, there.number}
    assert [r["service_request_id"] for r in listed(o311, jurisdiction_id="620103")] == [
        here.number
    ]
    assert [r["service_request_id"] for r in listed(o311, jurisdiction_id="620104")] == [
        there.number
    ]
    check_error(o311.get(f"requests/{there.number}", jurisdiction_id="620103"), 404)
    # A key limited to one district reads that district alone.
    assert [r["service_request_id"] for r in listed(o311, api_key=app_key.raw)] == [here.number]
    assert other.parent_id is None

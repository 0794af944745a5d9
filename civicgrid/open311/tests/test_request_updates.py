from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import services as case_services
from civicgrid.cases.models import Action, Case, CaseEvent, Status
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.open311.tests.conftest import (
    UPDATE_FIELDS,
    Key,
    Open311Client,
    check_error,
    children,
    xml_root,
)

pytestmark = pytest.mark.django_db


def feed(o311: Open311Client, **params: Any) -> list[dict[str, Any]]:
    response = o311.get("servicerequestupdates", **params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body, list)
    for update in body:
        assert list(update) == UPDATE_FIELDS
        assert isinstance(update["update_id"], str)
        assert update["updated_datetime"].endswith("+08:00")
    return body


def test_the_feed_lists_each_case_change_in_order_with_mysocietys_statuses(
    o311: Open311Client, drive: Callable[[str], Case]
) -> None:
    case = drive(Status.CLOSED)
    updates = [u for u in feed(o311) if u["service_request_id"] == case.number]
    assert [(u["status"], u["external_status_code"]) for u in updates] == [
        ("OPEN", "new"),
        ("OPEN", "filed"),
        ("ACTION_SCHEDULED", "dispatched"),
        ("IN_PROGRESS", "in_progress"),
        ("IN_PROGRESS", "handled"),
        ("FIXED", "closed"),
    ]
    assert updates[4]["description"] == "已劝离摊贩，恢复通行"
    ids = [int(u["update_id"]) for u in updates]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.REJECTED, "NOT_COUNCILS_RESPONSIBILITY"),
        (Status.VOIDED, "CANCELLED"),
        (Status.MERGED, "DUPLICATE"),
        (Status.RETURNED, "INTERNAL_REFERRAL"),
        (Status.PARKED, "ACTION_SCHEDULED"),
    ],
)
def test_final_and_side_statuses_map_to_mysocietys(
    o311: Open311Client, drive: Callable[[str], Case], status: str, expected: str
) -> None:
    case = drive(status)
    last = [u for u in feed(o311) if u["service_request_id"] == case.number][-1]
    assert last["status"] == expected
    assert last["external_status_code"] == status


def test_a_reopen_is_reopen_and_private_notes_stay_out(
    o311: Open311Client, drive: Callable[[str], Case], call_taker: User, supervisor: User
) -> None:
    case = drive(Status.CLOSED)
    case_services.urge_case(
        case=case_services.reopen_case(case=case, actor=call_taker, reason="市民不满意，重办"),
        actor=supervisor,
        reason="内部督办：马军批示",
    )
    updates = [u for u in feed(o311) if u["service_request_id"] == case.number]
    assert updates[-1]["status"] == "REOPEN"
    assert updates[-1]["description"] == "市民不满意，重办"
    assert "内部督办" not in json.dumps(updates, ensure_ascii=False)


def test_a_void_approved_in_private_shows_as_cancelled_without_its_reason(
    o311: Open311Client, drive: Callable[[str], Case]
) -> None:
    case = drive(Status.VOIDED)
    text = json.dumps(feed(o311), ensure_ascii=False)
    assert "重复登记" not in text  # the reason of the void request, not public
    last = [u for u in feed(o311) if u["service_request_id"] == case.number][-1]
    assert last["description"] == "批准作废"


def test_the_feed_keeps_to_its_window(o311: Open311Client, new_case: IntakeFactory) -> None:
    now = timezone.now()
    old = new_case(received_at=now - timedelta(days=30))
    CaseEvent.objects.filter(case=old).update(at=now - timedelta(days=30))
    recent = new_case()
    start = (now - timedelta(days=1)).isoformat()
    assert {u["service_request_id"] for u in feed(o311, start_date=start)} == {recent.number}
    everything = feed(o311, start_date=(now - timedelta(days=40)).isoformat())
    assert {u["service_request_id"] for u in everything} == {old.number, recent.number}
    assert len(feed(o311, start_date=(now - timedelta(days=40)).isoformat(), page_size="1")) == 1
    check_error(o311.get("servicerequestupdates", start_date="nope"), 400)
    check_error(
        o311.get("servicerequestupdates", start_date="2026-01-01", end_date="2026-12-01"), 400
    )


def test_the_feed_in_xml_has_request_update_elements(
    o311: Open311Client, drive: Callable[[str], Case]
) -> None:
    drive(Status.IN_PROGRESS)
    root = xml_root(o311.get("servicerequestupdates", "xml"), "service_request_updates")
    assert len(root) == 4
    for update in root:
        assert update.tag == "request_update"
        assert children(update) == UPDATE_FIELDS


def citizen_update(key: Key | None, case: Case, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service_request_id": case.number,
        "update_id": "fms-update-1",
        "status": "OPEN",
        "updated_datetime": "2026-12-08T13:21:00+08:00",
        "description": "摊贩今天又来了，电话 13800001111",
        "media_url": "https://fixmystreet.example/photo/1.jpeg",
        "first_name": "小明",
        "last_name": "张",
        "email": "zhang@example.com",
    }
    if key is not None:
        data["api_key"] = key.raw
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_a_citizens_update_is_a_public_note_taken_once(
    o311: Open311Client, app_key: Key, new_case: IntakeFactory
) -> None:
    case = new_case()
    response = o311.post("servicerequestupdates", citizen_update(app_key, case))
    assert response.status_code == 200, response.content
    [answer] = response.json()
    event = CaseEvent.objects.get(pk=int(answer["update_id"]))
    assert event.case == case
    assert event.action == Action.NOTE
    assert event.is_public
    assert event.actor == app_key.integration.acting_user
    assert event.reason == "摊贩今天又来了，电话 13800001111"
    assert event.payload["status"] == "OPEN"
    assert event.payload["update_id"] == "fms-update-1"
    case.refresh_from_db()
    assert case.status == Status.NEW  # a citizen's update moves nothing

    again = o311.post("servicerequestupdates", citizen_update(app_key, case))
    assert again.json() == [answer]
    assert CaseEvent.objects.filter(action=Action.NOTE).count() == 1

    [published] = [u for u in feed(o311) if u["update_id"] == answer["update_id"]]
    assert published["description"] == "摊贩今天又来了，电话 ***"
    assert published["media_url"] == "https://fixmystreet.example/photo/1.jpeg"
    assert published["status"] == "OPEN"

    root = xml_root(
        o311.post(
            "servicerequestupdates", citizen_update(app_key, case, update_id="fms-2"), fmt="xml"
        ),
        "service_request_updates",
    )
    assert [children(u) for u in root] == [["update_id"]]


def test_a_citizens_update_needs_a_key_and_every_field(
    o311: Open311Client, app_key: Key, new_case: IntakeFactory
) -> None:
    case = new_case()
    check_error(o311.post("servicerequestupdates", citizen_update(None, case)), 403)
    missing = check_error(
        o311.post(
            "servicerequestupdates",
            citizen_update(app_key, case, update_id=None, description=None),
        ),
        400,
    )
    assert len(missing) == 2
    check_error(
        o311.post("servicerequestupdates", citizen_update(app_key, case, status="DONE")), 400
    )
    check_error(
        o311.post("servicerequestupdates", citizen_update(app_key, case, updated_datetime="x")),
        400,
    )
    check_error(
        o311.post("servicerequestupdates", citizen_update(app_key, case, service_request_id="999")),
        404,
    )
    assert not CaseEvent.objects.filter(action=Action.NOTE).exists()


def test_the_feed_is_empty_for_a_district_without_cases(o311: Open311Client, tree: Tree) -> None:
    assert feed(o311) == []
    assert len(xml_root(o311.get("servicerequestupdates", "xml"), "service_request_updates")) == 0

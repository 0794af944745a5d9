from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django_tasks_db.models import DBTaskResult
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from civicgrid.accounts.models import AccessLog, Scope
from civicgrid.accounts.services import (
    create_integration,
    issue_integration_key,
    revoke_integration,
    revoke_integration_key,
)
from civicgrid.cases.models import Case, Channel, Status
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT
from civicgrid.grids import services as grid_services
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree, box
from civicgrid.grids.validation import GridInput
from civicgrid.open311 import services
from civicgrid.open311.models import Submission, SubmissionState
from civicgrid.open311.tests.conftest import NOISE, Key, Open311Client, check_error, xml_root

pytestmark = pytest.mark.django_db


def report(key: Key | None, **fields: Any) -> dict[str, Any]:
    """A noise report at the east point, as a 311 app would send it."""
    data: dict[str, Any] = {
        "service_code": NOISE,
        "lat": EAST_POINT[1],
        "long": EAST_POINT[0],
        "description": "楼下商铺用高音喇叭招揽顾客，晚上十点还不停",
        "attribute[noise_source]": "shop",
        "attribute[time_of_day][]": ["evening", "night"],
        "first_name": "小明",
        "last_name": "张",
        "phone": "13912345678",
        "email": "zhang@example.com",
        "device_id": "device-1",
    }
    if key is not None:
        data["api_key"] = key.raw
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_a_posted_request_becomes_a_located_routed_case_filed_as_the_integration(
    o311: Open311Client, app_key: Key, city_unit: HandlingUnit
) -> None:
    response = o311.post("requests", report(app_key))
    assert response.status_code == 200, response.content
    [answer] = response.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    case = Case.objects.get(number=answer["service_request_id"])
    assert case.channel == Channel.API
    assert case.status == Status.NEW
    assert case.category.code == NOISE
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.suggested_unit == city_unit  # the same routing as every channel
    assert case.created_by == app_key.integration.acting_user
    assert case.requester_name == "张小明"
    assert case.requester_phone == "13912345678"
    assert "噪声来源：商铺经营" in case.description
    assert "时段：傍晚（18–22 时）、夜间（22 时至次日 6 时）" in case.description
    submission = Submission.objects.get(case=case)
    assert submission.integration == app_key.integration
    assert submission.state == SubmissionState.TAKEN
    assert submission.attributes == {"noise_source": "shop", "time_of_day": ["evening", "night"]}
    assert submission.email == "zhang@example.com"
    assert answer["service_notice"].startswith("按规定应在")
    assert answer["account_id"] is None


def test_the_post_answer_in_xml_has_the_request_element(o311: Open311Client, app_key: Key) -> None:
    response = o311.post("requests", report(app_key, account_id="acc-7"), fmt="xml")
    assert response.status_code == 200
    root = xml_root(response, "service_requests")
    [request] = root
    assert request.tag == "request"
    assert [c.tag for c in request] == ["service_request_id", "service_notice", "account_id"]
    assert request.findtext("account_id") == "acc-7"
    assert Case.objects.filter(number=request.findtext("service_request_id")).exists()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_post_without_api_key_is_403(o311: Open311Client, app_key: Key, fmt: str) -> None:
    [description] = check_error(o311.post("requests", report(None), fmt), 403, fmt)
    assert "api_key" in description
    assert not Case.objects.exists()


def test_a_wrong_or_revoked_key_is_403(o311: Open311Client, app_key: Key) -> None:
    check_error(o311.post("requests", report(None, api_key="cgk_wrong")), 403)
    check_error(o311.post("requests", report(None, api_key="cg_personal_token")), 403)
    [key] = app_key.integration.keys.all()
    revoke_integration_key(key=key)
    check_error(o311.post("requests", report(app_key)), 403)
    assert not Case.objects.exists()


def test_a_revoked_integration_stops_all_its_keys(o311: Open311Client, app_key: Key) -> None:
    _second, raw = issue_integration_key(integration=app_key.integration)
    revoke_integration(integration=app_key.integration)
    check_error(o311.post("requests", report(app_key)), 403)
    check_error(o311.post("requests", report(None, api_key=raw)), 403)


def test_a_key_without_the_write_scope_cannot_post(o311: Open311Client, tree: Tree) -> None:
    reader = create_integration(name="只读看板", scopes=[Scope.OPEN311_READ])
    _key, raw = issue_integration_key(integration=reader)
    [description] = check_error(o311.post("requests", report(None, api_key=raw)), 403)
    assert "open311:write" in description
    assert o311.get("requests", api_key=raw).status_code == 200


def test_a_key_for_another_district_cannot_post_here(o311: Open311Client, tree: Tree) -> None:
    [other] = grid_services.save_grids(
        items=[GridInput(code="620104", name="第二区", level=0, geometry=box(104, 35, 104.2, 35.1))]
    )
    elsewhere = create_integration(name="外区应用", scopes=[Scope.OPEN311_WRITE], districts=[other])
    _key, raw = issue_integration_key(integration=elsewhere)
    check_error(o311.post("requests", report(None, api_key=raw, jurisdiction_id="620103")), 403)
    # Without jurisdiction_id its one district is meant, and the point is not in it.
    [description] = check_error(o311.post("requests", report(None, api_key=raw)), 400)
    assert "不在辖区" in description


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_service_code_is_404(o311: Open311Client, app_key: Key, fmt: str) -> None:
    check_error(o311.post("requests", report(app_key, service_code="NOPE"), fmt), 404, fmt)
    check_error(o311.post("requests", report(app_key, service_code="SJ06"), fmt), 404, fmt)
    [description] = check_error(
        o311.post("requests", report(app_key, service_code=""), fmt), 400, fmt
    )
    assert "service_code" in description


def test_a_request_without_any_location_is_400(o311: Open311Client, app_key: Key) -> None:
    [description] = check_error(o311.post("requests", report(app_key, lat=None, long=None)), 400)
    assert "lat" in description
    assert "address_string" in description
    check_error(o311.post("requests", report(app_key, long=None)), 400)
    check_error(o311.post("requests", report(app_key, lat="north")), 400)
    check_error(o311.post("requests", report(app_key, lat="95")), 400)


def test_an_address_alone_is_kept_for_manual_location(o311: Open311Client, app_key: Key) -> None:
    response = o311.post(
        "requests",
        report(
            app_key, lat=None, long=None, address_string="七里河区西津西路 16 号", address_id="A-16"
        ),
    )
    assert response.status_code == 200, response.content
    case = Case.objects.get(number=response.json()[0]["service_request_id"])
    assert case.needs_location
    assert case.grid is None
    assert case.address == "七里河区西津西路 16 号"
    assert Submission.objects.get(case=case).address_id == "A-16"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_point_outside_the_jurisdiction_is_refused_with_400(
    o311: Open311Client, app_key: Key, fmt: str
) -> None:
    data = report(app_key, lat=OUTSIDE_POINT[1], long=OUTSIDE_POINT[0])
    [description] = check_error(o311.post("requests", data, fmt), 400, fmt)
    assert "不在辖区" in description
    assert not Case.objects.exists()


def test_attribute_values_are_checked_against_the_definition(
    o311: Open311Client, app_key: Key
) -> None:
    descriptions = check_error(
        o311.post(
            "requests",
            report(
                app_key,
                **{"attribute[noise_source]": None, "attribute[time_of_day][]": ["noon"]},
            ),
        ),
        400,
    )
    assert len(descriptions) == 2  # every problem at once
    assert any("noise_source" in d for d in descriptions)
    assert any("noon" in d for d in descriptions)
    check_error(
        o311.post("requests", report(app_key, **{"attribute[noise_source]": "dragon"})), 400
    )
    assert not Case.objects.exists()


def test_a_multivaluelist_may_also_come_as_a_repeated_plain_attribute(
    o311: Open311Client, app_key: Key
) -> None:
    data = report(app_key, **{"attribute[time_of_day][]": None, "attribute[time_of_day]": ["day"]})
    data["attribute[fixmystreet_id]"] = "4711"  # the client's own, kept as given
    response = o311.post("requests", data)
    assert response.status_code == 200, response.content
    submission = Submission.objects.get()
    assert submission.attributes == {
        "noise_source": "shop",
        "time_of_day": ["day"],
        "fixmystreet_id": "4711",
    }


def test_a_description_over_4000_characters_is_400(o311: Open311Client, app_key: Key) -> None:
    check_error(o311.post("requests", report(app_key, description="吵" * 4001)), 400)
    check_error(o311.post("requests", report(app_key, email="not-an-address")), 400)
    check_error(o311.post("requests", report(app_key, media_url="javascript:alert(1)")), 400)


def test_the_same_request_from_the_same_device_makes_one_case(
    o311: Open311Client, app_key: Key
) -> None:
    first = o311.post("requests", report(app_key)).json()
    again = o311.post("requests", report(app_key)).json()
    assert again[0]["service_request_id"] == first[0]["service_request_id"]
    assert Case.objects.count() == 1
    # Another report from the same device is another case.
    o311.post("requests", report(app_key, description="又开始放音乐了"))
    assert Case.objects.count() == 2


def test_the_integrations_external_id_makes_a_retry_safe(o311: Open311Client, app_key: Key) -> None:
    first = o311.post("requests", report(app_key, device_id=None, external_id="fms-1")).json()
    changed = report(app_key, device_id=None, external_id="fms-1", description="重发")
    again = o311.post("requests", changed).json()
    assert again[0]["service_request_id"] == first[0]["service_request_id"]
    by_header = o311.post(
        "requests", report(app_key, device_id=None), headers={"Idempotency-Key": "fms-2"}
    ).json()
    assert by_header != first
    assert (
        o311.post(
            "requests", report(app_key, device_id=None), headers={"Idempotency-Key": "fms-2"}
        ).json()
        == by_header
    )
    assert Case.objects.count() == 2
    case = Case.objects.get(number=first[0]["service_request_id"])
    assert case.external_id == f"o311:{app_key.integration.pk}:fms-1"


def test_deferred_intake_answers_with_a_token_the_worker_turns_into_a_case(
    o311: Open311Client,
    app_key: Key,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    app_key.integration.deferred_intake = True
    app_key.integration.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = o311.post("requests", report(app_key))
    [answer] = response.json()
    assert set(answer) == {"token", "service_notice", "account_id"}
    assert not Case.objects.exists()
    assert DBTaskResult.objects.filter(task_path__endswith="take_in_submission").count() == 1
    waiting = o311.get(f"tokens/{answer['token']}").json()
    assert waiting == [{"service_request_id": None, "token": answer["token"]}]

    submission = services.take_in(submission_id=Submission.objects.get().pk)
    assert submission is not None
    assert submission.state == SubmissionState.TAKEN
    assert services.take_in(submission_id=submission.pk) is None  # taken once
    case = Case.objects.get()
    assert Submission.objects.get(case=case) == submission
    assert submission.pending_data == {}
    [found] = o311.get(f"tokens/{answer['token']}").json()
    assert found == {"service_request_id": case.number, "token": answer["token"]}
    root = xml_root(o311.get(f"tokens/{answer['token']}", "xml"), "service_requests")
    assert [c.tag for c in root[0]] == ["service_request_id", "token"]


def test_a_deferred_request_the_worker_refuses_answers_its_token_with_the_reason(
    o311: Open311Client, app_key: Key, noise: Any
) -> None:
    app_key.integration.deferred_intake = True
    app_key.integration.save()
    token = o311.post("requests", report(app_key)).json()[0]["token"]
    noise.is_active = False
    noise.save()
    services.take_in(submission_id=Submission.objects.get().pk)
    [description] = check_error(o311.get(f"tokens/{token}"), 400)
    assert "停用" in description


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_token_is_404(o311: Open311Client, tree: Tree, fmt: str) -> None:
    check_error(o311.get("tokens/nope", fmt), 404, fmt)


def test_calls_over_the_keys_limit_per_minute_get_429(o311: Open311Client, app_key: Key) -> None:
    app_key.integration.rate_limit_per_minute = 3
    app_key.integration.save()
    with time_machine.travel("2026-12-08 10:00:05 +0800", tick=False):
        for _ in range(3):
            assert o311.get("services", api_key=app_key.raw).status_code == 200
        response = o311.post("requests", report(app_key))
        [description] = check_error(response, 429)
        assert "3" in description
        assert response["Retry-After"] == "56"
        check_error(o311.get("services", "xml", api_key=app_key.raw), 429, "xml")
        assert o311.get("services").status_code == 200  # without a key: not counted
    with time_machine.travel("2026-12-08 10:01:00 +0800", tick=False):
        assert o311.post("requests", report(app_key)).status_code == 200


def test_every_call_with_a_key_is_written_to_the_access_log(
    o311: Open311Client, app_key: Key
) -> None:
    o311.post("requests", report(app_key), REMOTE_ADDR="10.1.2.3")
    o311.get("requests", api_key=app_key.raw)
    o311.post("requests", report(None, api_key="cgk_wrong"))
    o311.get("services")  # no key: no integration call
    rows = list(AccessLog.objects.order_by("id"))
    assert [(r.method, r.path, r.status) for r in rows] == [
        ("POST", "/open311/v2/requests.json", 200),
        ("GET", "/open311/v2/requests.json", 200),
        ("POST", "/open311/v2/requests.json", 403),
    ]
    assert rows[0].integration == app_key.integration
    assert rows[0].key is not None
    assert rows[0].key.prefix == app_key.raw[:12]
    assert rows[0].remote_addr == "10.1.2.3"
    assert rows[2].integration is None
    assert all(r.duration_ms >= 0 for r in rows)
    assert app_key.raw not in "".join(r.path for r in rows)


def test_a_post_needs_a_jurisdiction_when_several_districts_are_hosted(
    o311: Open311Client, tree: Tree
) -> None:
    grid_services.save_grids(
        items=[GridInput(code="620104", name="第二区", level=0, geometry=box(104, 35, 104.2, 35.1))]
    )
    anywhere = create_integration(name="全市应用", scopes=[Scope.OPEN311_WRITE])
    _key, raw = issue_integration_key(integration=anywhere)
    [description] = check_error(o311.post("requests", report(None, api_key=raw)), 400)
    assert "jurisdiction_id" in description
    ok = o311.post("requests", report(None, api_key=raw, jurisdiction_id="620103"))
    assert ok.status_code == 200


def test_posted_attributes_read_back_with_extensions_in_both_formats(
    o311: Open311Client, app_key: Key
) -> None:
    data = report(app_key)
    data["attribute[1 odd code]"] = "<kept>"
    number = o311.post("requests", data).json()[0]["service_request_id"]
    [found] = o311.get(f"requests/{number}", extensions="true").json()
    assert found["extended_attributes"]["channel"] == Channel.API
    assert found["extended_attributes"]["attributes"] == [
        {"code": "1 odd code", "value": "<kept>"},
        {"code": "noise_source", "value": "shop"},
        {"code": "time_of_day", "value": ["evening", "night"]},
    ]
    root = xml_root(o311.get(f"requests/{number}", "xml", extensions="true"), "service_requests")
    attributes = root.find("request/extended_attributes/attributes")
    assert attributes is not None
    assert [a.findtext("code") for a in attributes] == ["1 odd code", "noise_source", "time_of_day"]
    assert [v.text for v in attributes[2].find("value")] == ["evening", "night"]  # type: ignore[union-attr]
    assert attributes[0].findtext("value") == "<kept>"

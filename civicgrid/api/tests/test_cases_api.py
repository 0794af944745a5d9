from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import time_machine
from django.test import Client
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from civicgrid.accounts.models import User
from civicgrid.accounts.services import create_api_token, revoke_api_token
from civicgrid.cases.models import Case, Category, CategoryKind, Status, TimeLimit
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit, UnitKind
from civicgrid.grids.services import create_handling_unit
from civicgrid.grids.tests.fixtures import Tree

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def openapi(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        body = Client().get("/api/v1/openapi.json")
    assert body.status_code == 200
    return body.json()


def check(openapi: dict[str, Any], path: str, method: str, response: Any) -> Any:
    """Assert the response body matches the schema the OpenAPI document declares."""
    status = str(response.status_code)
    assert status in openapi["paths"][path][method]["responses"], status
    steps = ["paths", path, method, "responses", status, "content", "application/json", "schema"]
    pointer = "/".join(quote(step.replace("~", "~0").replace("/", "~1"), safe="") for step in steps)
    document = Resource.from_contents(openapi, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", document)
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:openapi#/{pointer}"}, registry=registry
    )
    body = response.json()
    validator.validate(body)
    return body


def post(client: Client, url: str, data: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(
        url, data=json.dumps(data or {}), content_type="application/json", headers=headers
    )


@pytest.fixture
def as_user(client: Client) -> Callable[[User], Client]:
    def login(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return login


def test_the_openapi_schema_is_served_with_every_case_endpoint(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for path in [
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/dispatch",
        "/api/v1/cases/{case_id}/verify",
        "/api/v1/cases/{case_id}/follow-up",
        "/api/v1/cases/{case_id}/merge",
    ]:
        assert path in paths


def test_intake_through_the_api_is_idempotent_by_key(
    as_user: Callable[[User], Client],
    call_taker: User,
    category: Category,
    openapi: Any,
    city_unit: HandlingUnit,
) -> None:
    client = as_user(call_taker)
    payload = {
        "channel": "hotline",
        "category": category.code,
        "description": "占道经营",
        "lon": EAST_POINT[0],
        "lat": EAST_POINT[1],
        "requester_phone": "13912345678",
    }
    first = post(client, "/api/v1/cases", payload, **{"Idempotency-Key": "abc-1"})
    assert first.status_code == 201, first.content
    body = check(openapi, "/api/v1/cases", "post", first)
    assert body["status"] == "new"
    assert body["grid"]["code"] == "620103002001001"
    assert body["suggested_unit"]["id"] == city_unit.pk
    again = post(client, "/api/v1/cases", payload, **{"Idempotency-Key": "abc-1"})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert Case.objects.count() == 1


def _statements(captured: Any) -> list[str]:
    """The first word of each statement captured (BEGIN, SELECT, INSERT …); an
    ``executemany`` (SQLite's statistics upserts) is one statement ("3 times: …")."""
    sqls = [re.sub(r"^\d+ times: ", "", q["sql"]) for q in captured]
    return [sql.lstrip("( ").split(None, 1)[0].upper() for sql in sqls]


@pytest.fixture
def warm_caches(settings: Any) -> None:
    """The per-process caches as a server has them between their rechecks (the suite
    rechecks the locator and the calendar on every call). The webhooks' "no
    subscription" too: trusted for 5 s, it made a slow machine's second request one
    SELECT more than its first."""
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 3600
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600
    settings.CIVICGRID_WEBHOOKS_RECHECK_SECONDS = 3600


@pytest.mark.usefixtures("warm_caches")
def test_intake_through_the_api_makes_a_fixed_number_of_statements(
    call_taker: User, category: Category, city_unit: HandlingUnit, openapi: Any
) -> None:
    """What an integration's POST costs: the token, the category, then one transaction
    (the idempotency lookup, the routing rules, the time limit, the case INSERT and its
    number, the event, the deadline, the statistics: the two facts and one upsert per
    rollup table) and the caller's memberships for the body. No read of the case."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, raw = create_api_token(user=call_taker, name="12345 平台")
    integration = Client(enforce_csrf_checks=True)
    payload = {
        "channel": "hotline",
        "category": category.code,
        "description": "占道经营",
        "lon": EAST_POINT[0],
        "lat": EAST_POINT[1],
        "requester_name": "张先生",
        "external_id": "GD-0001",
    }
    auth = {"Authorization": f"Bearer {raw}"}
    warm = post(integration, "/api/v1/cases", payload, **auth, **{"Idempotency-Key": "w-1"})
    assert warm.status_code == 201, warm.content
    payload["external_id"] = "GD-0002"
    with CaptureQueriesContext(connection) as captured:
        created = post(integration, "/api/v1/cases", payload, **auth, **{"Idempotency-Key": "k-2"})
    assert created.status_code == 201, created.content
    body = check(openapi, "/api/v1/cases", "post", created)
    assert created["Location"] == f"/api/v1/cases/{body['id']}"
    assert body["requester_name"] == "张先生"  # the call-taker sees whom they registered
    assert body["suggested_unit"]["id"] == city_unit.pk
    kinds = _statements(captured)
    writes = ["INSERT"] * 4 + ["UPDATE"]  # case, number; event, deadline, case fact
    writes += ["INSERT"] * 5  # person fact, one upsert per rollup table
    assert sorted(k for k in kinds if k in ("INSERT", "UPDATE", "DELETE")) == sorted(writes)
    # The token, the category; the idempotency lookup, the routing rules, the
    # territorial unit (this category has no rule and no default unit), the time
    # limit; the caller's memberships (whether they see the requester).
    assert kinds.count("SELECT") == 7, kinds
    assert "LOCK" not in kinds
    # Every write in one transaction (a savepoint inside the test's own transaction).
    assert kinds.count("BEGIN") + kinds.count("SAVEPOINT") == 1, kinds
    assert len(kinds) <= 19, kinds
    # The slim body is what the detail says of the same case.
    detail = integration.get(f"/api/v1/cases/{body['id']}", headers=auth).json()
    assert {k: detail[k] for k in body} == body


def test_intake_refuses_bad_input_with_a_message(
    as_user: Callable[[User], Client], call_taker: User, category: Category
) -> None:
    client = as_user(call_taker)
    outside = post(
        client,
        "/api/v1/cases",
        {
            "category": category.code,
            "description": "x",
            "lon": OUTSIDE_POINT[0],
            "lat": OUTSIDE_POINT[1],
        },
    )
    assert outside.status_code == 400
    assert "不在辖区内" in outside.json()["detail"]
    unknown = post(client, "/api/v1/cases", {"category": "NOPE", "description": "x"})
    assert unknown.status_code == 400
    assert "NOPE" in unknown.json()["detail"]
    missing = post(client, "/api/v1/cases", {"category": category.code})
    assert missing.status_code == 422
    assert not Case.objects.exists()


def test_the_api_needs_a_session_or_a_valid_token(
    call_taker: User, category: Category, new_case: IntakeFactory
) -> None:
    case = new_case()
    anonymous = Client().get(f"/api/v1/cases/{case.pk}")
    assert anonymous.status_code == 401
    token, raw = create_api_token(user=call_taker, name="12345 平台")
    authed = Client().get(f"/api/v1/cases/{case.pk}", headers={"Authorization": f"Bearer {raw}"})
    assert authed.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    revoke_api_token(token=token)
    revoked = Client().get(f"/api/v1/cases/{case.pk}", headers={"Authorization": f"Bearer {raw}"})
    assert revoked.status_code == 401
    forged = Client().get(f"/api/v1/cases/{case.pk}", headers={"Authorization": "Bearer cg_nope"})
    assert forged.status_code == 401


def test_an_integration_posts_with_its_token_alone_and_a_session_still_needs_csrf(
    call_taker: User, category: Category, city_unit: HandlingUnit
) -> None:
    # A real client: Django's test client skips CSRF checks unless told otherwise.
    _, raw = create_api_token(user=call_taker, name="12345 平台")
    payload = {
        "channel": "hotline",
        "category": category.code,
        "description": "占道经营",
        "lon": EAST_POINT[0],
        "lat": EAST_POINT[1],
    }
    integration = Client(enforce_csrf_checks=True)
    created = post(integration, "/api/v1/cases", payload, Authorization=f"Bearer {raw}")
    assert created.status_code == 201, created.content
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(call_taker)
    refused = post(browser, "/api/v1/cases", payload)
    assert refused.status_code == 403
    assert Case.objects.count() == 1


def test_transitions_map_domain_errors_to_statuses(
    as_user: Callable[[User], Client],
    drive: Callable[[str], Case],
    unit_handler: User,
    dispatcher: User,
    outsider: User,
    city_unit: HandlingUnit,
    openapi: Any,
) -> None:
    case = drive(Status.FILED)
    url = f"/api/v1/cases/{case.pk}/dispatch"
    # A unit handler cannot see a case not sent to their unit: 404, like a missing one.
    assert post(as_user(unit_handler), url, {"unit": city_unit.pk}).status_code == 404
    assert post(as_user(outsider), url, {"unit": city_unit.pk}).status_code == 404
    assert post(as_user(dispatcher), "/api/v1/cases/999999/accept").status_code == 404
    # Wrong state: 400 with the reason.
    wrong = post(as_user(dispatcher), f"/api/v1/cases/{case.pk}/acknowledge")
    assert wrong.status_code == 403  # a dispatcher may never acknowledge
    stale = post(as_user(dispatcher), url + f"?version={case.version - 1}", {"unit": city_unit.pk})
    assert stale.status_code == 409
    ok = post(as_user(dispatcher), url + f"?version={case.version}", {"unit": city_unit.pk})
    assert ok.status_code == 200
    body = check(openapi, "/api/v1/cases/{case_id}/dispatch", "post", ok)
    assert body["status"] == "dispatched"
    again = post(as_user(dispatcher), url, {"unit": city_unit.pk})
    assert again.status_code == 400
    assert "不能执行" in again.json()["detail"]
    # Now the unit sees it and may take exactly its actions.
    detail = as_user(unit_handler).get(f"/api/v1/cases/{case.pk}")
    assert detail.status_code == 200
    assert set(detail.json()["allowed_actions"]) == {"acknowledge", "send_back"}


@pytest.mark.usefixtures("warm_caches")
def test_a_dispatch_through_the_api_makes_a_fixed_number_of_statements(
    drive: Callable[[str], Case], dispatcher: User, city_unit: HandlingUnit, openapi: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, raw = create_api_token(user=dispatcher, name="派遣台")
    auth = {"Authorization": f"Bearer {raw}"}
    client = Client(enforce_csrf_checks=True)
    first, case = drive(Status.FILED), drive(Status.FILED)
    warm = post(client, f"/api/v1/cases/{first.pk}/dispatch", {"unit": city_unit.pk}, **auth)
    assert warm.status_code == 200, warm.content
    with CaptureQueriesContext(connection) as captured:
        sent = post(client, f"/api/v1/cases/{case.pk}/dispatch", {"unit": city_unit.pk}, **auth)
    assert sent.status_code == 200, sent.content
    body = check(openapi, "/api/v1/cases/{case_id}/dispatch", "post", sent)
    assert body["status"] == "dispatched"
    assert body["lead_unit"]["id"] == city_unit.pk
    assert [e["action"] for e in body["timeline"]][-1] == "dispatch"
    kinds = _statements(captured)
    # The conditional UPDATE of the case (with its next due time), the event, the
    # deadline finished and the next one; the statistics: the person facts replaced,
    # the case fact upserted, one upsert per rollup table.
    writes = ["UPDATE", "INSERT", "UPDATE", "INSERT", "DELETE", "INSERT", "INSERT"]
    writes += ["INSERT"] * 4
    assert sorted(k for k in kinds if k in ("INSERT", "UPDATE", "DELETE")) == sorted(writes)
    # The token, the unit, the memberships, the case with its category, the time
    # limit, the statistics' reads (3 rows of the case, 2 stored facts), the assisting
    # units, the case reloaded with its relations, and the detail's reads (the grid's
    # ancestors, assisting units, the events (timeline and milestones), deadlines,
    # attachments).
    assert kinds.count("SELECT") == 17, kinds
    assert kinds.count("BEGIN") + kinds.count("SAVEPOINT") == 1, kinds
    assert len(kinds) <= 32, kinds


def test_search_filters_paginates_by_cursor_and_masks_requesters(
    as_user: Callable[[User], Client],
    new_case: IntakeFactory,
    dispatcher: User,
    community_staff: User,
    openapi: Any,
    django_assert_max_num_queries: Any,
) -> None:
    cases = [new_case(description=f"第{i}件") for i in range(7)]
    client = as_user(dispatcher)
    seen: list[int] = []
    cursor = ""
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        with django_assert_max_num_queries(6):
            page = client.get("/api/v1/cases", params)
        body = check(openapi, "/api/v1/cases", "get", page)
        seen += [item["id"] for item in body["items"]]
        assert all(item["requester_phone"] == "139****5678" for item in body["items"])
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert seen == sorted((c.pk for c in cases), reverse=True)
    assert client.get("/api/v1/cases", {"q": "第3件"}).json()["items"][0]["id"] == cases[3].pk
    assert client.get("/api/v1/cases", {"status": ["closed"]}).json()["items"] == []
    assert len(client.get("/api/v1/cases", {"status": ["new"]}).json()["items"]) == 7
    # Community A's staff see none of these east-side cases.
    assert as_user(community_staff).get("/api/v1/cases").json()["items"] == []
    assert client.get("/api/v1/cases", {"cursor": "!!"}).status_code == 400


#: What ``GET /api/v1/cases`` costs in queries with a session (the session, the user,
#: the memberships, the page): fixed, whatever the page size, so an N+1 shows here.
SEARCH_QUERIES = 4


def test_a_search_page_takes_the_same_queries_for_one_case_or_fifty(
    as_user: Callable[[User], Client],
    new_case: IntakeFactory,
    dispatcher: User,
    unit_handler: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
    django_assert_num_queries: Any,
) -> None:
    first = new_case(description="第一件")
    client, unit_client = as_user(dispatcher), as_user(unit_handler)
    with django_assert_num_queries(SEARCH_QUERIES):
        assert [c["id"] for c in client.get("/api/v1/cases").json()["items"]] == [first.pk]
    cases = [first] + [new_case(description=f"第{i}件") for i in range(59)]
    # Led by the unit, and some assisted by it too (each still once: EXISTS, no join).
    Case.objects.update(lead_unit=city_unit)
    for case in cases[::3]:
        case.assisting_units.set([city_unit, west_unit])
    newest = [c.pk for c in reversed(cases)]
    for who in (client, unit_client):
        with django_assert_num_queries(SEARCH_QUERIES):
            page = who.get("/api/v1/cases", {"limit": 50}).json()
        assert [c["id"] for c in page["items"]] == newest[:50]
        with django_assert_num_queries(SEARCH_QUERIES):
            rest = who.get("/api/v1/cases", {"limit": 50, "cursor": page["next_cursor"]}).json()
        assert [c["id"] for c in rest["items"]] == newest[50:]
        assert rest["next_cursor"] is None
    # Filters and a text search add no query per case either.
    with django_assert_num_queries(SEARCH_QUERIES):
        query: dict[str, str | int | list[str]] = {
            "unit": west_unit.pk,
            "q": "件",
            "status": ["new"],
            "limit": 50,
        }
        found = client.get("/api/v1/cases", query).json()
    assert [c["id"] for c in found["items"]] == [c.pk for c in reversed(cases[::3])]


def test_the_seed_story_replays_through_the_api(
    as_user: Callable[[User], Client],
    tree: Tree,
    call_taker: User,
    dispatcher: User,
    east_worker: User,
    openapi: Any,
) -> None:
    """A 12345 call about ice at a bridge roundabout, received at 13:21, dispatched to
    环卫局 at 13:24, handled the next morning, closed within a day."""
    roads = Category.objects.create(code="T04", name="突发事件（测试）", kind=CategoryKind.EVENT)
    ice = Category.objects.create(
        code="T0404", name="道路结冰（测试）", kind=CategoryKind.EVENT, parent=roads
    )
    TimeLimit.objects.create(
        category=ice, urgency="urgent", stage="handle", amount=1, unit="work_days"
    )
    sanitation = create_handling_unit(
        code="HWJ", name="环卫局", kind=UnitKind.BUREAU, serves=tree.district
    )
    handler = User.objects.create_user(username="hw", password=None, display_name="环卫局值班")
    handler.memberships.create(role="unit_handler", unit=sanitation)

    def at(day: int, hour: int, minute: int) -> Any:
        return time_machine.travel(
            datetime(2026, 1, day, hour, minute, tzinfo=SHANGHAI), tick=False
        )

    with at(8, 13, 21):
        created = post(
            as_user(call_taker),
            "/api/v1/cases",
            {
                "channel": "hotline",
                "category": "T0404",
                "urgency": "urgent",
                "request_type": "report",
                "description": "七里河桥环岛路面结冰，车辆打滑",
                "address": "七里河桥环岛",
                "lon": EAST_POINT[0],
                "lat": EAST_POINT[1],
                "external_id": "12345-20260108-0042",
            },
        )
        assert created.status_code == 201
        case_id = created.json()["id"]
    with at(8, 13, 22):
        assert post(as_user(call_taker), f"/api/v1/cases/{case_id}/accept").status_code == 200
    with at(8, 13, 24):
        sent = post(
            as_user(dispatcher), f"/api/v1/cases/{case_id}/dispatch", {"unit": sanitation.pk}
        )
        assert sent.status_code == 200, sent.content
    with at(8, 13, 40):
        assert post(as_user(handler), f"/api/v1/cases/{case_id}/acknowledge").status_code == 200
    with at(9, 9, 5):
        done = post(
            as_user(handler),
            f"/api/v1/cases/{case_id}/handle",
            {"result": "已撒融雪剂，路面恢复通行"},
        )
        assert done.status_code == 200
    with at(9, 10, 30):
        verified = post(as_user(east_worker), f"/api/v1/cases/{case_id}/verify", {"passed": True})
        assert verified.status_code == 200
    with at(9, 11, 0):
        detail = as_user(dispatcher).get(f"/api/v1/cases/{case_id}")
    body = check(openapi, "/api/v1/cases/{case_id}", "get", detail)
    assert body["status"] == "closed"
    assert body["milestones"]["to_accept"] == 60
    assert body["milestones"]["to_dispatch"] == 180  # three minutes
    assert body["milestones"]["to_close"] < 24 * 3600
    assert [e["action"] for e in body["timeline"]] == [
        "create",
        "accept",
        "dispatch",
        "acknowledge",
        "handle",
        "verify_pass",
    ]
    stages = {s["stage"]: s for s in body["stages"]}
    assert stages["dispatch"]["elapsed_seconds"] == 120
    assert all(s["met"] for s in body["stages"])
    assert body["lead_unit"]["name"] == "环卫局"


def _jpeg() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_photos_upload_all_or_nothing_and_download_with_case_access(
    as_user: Callable[[User], Client],
    drive: Callable[[str], Case],
    unit_handler: User,
    outsider: User,
    settings: Any,
    tmp_path: Any,
    openapi: Any,
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    case = drive(Status.IN_PROGRESS)
    client = as_user(unit_handler)
    url = f"/api/v1/cases/{case.pk}/photos"
    bad = client.post(
        url,
        {
            "kind": "after",
            "photos": [
                SimpleUploadedFile("a.jpg", _jpeg(), "image/jpeg"),
                SimpleUploadedFile("b.jpg", b"not an image", "image/jpeg"),
            ],
        },
    )
    assert bad.status_code == 400
    assert "b.jpg" in bad.json()["detail"]
    assert not case.attachments.exists()
    good = client.post(
        url, {"kind": "after", "photos": [SimpleUploadedFile("a.jpg", _jpeg(), "image/jpeg")]}
    )
    assert good.status_code == 201, good.content
    [photo] = check(openapi, "/api/v1/cases/{case_id}/photos", "post", good)
    assert (photo["width"], photo["height"]) == (640, 480)
    detail = client.get(f"/api/v1/cases/{case.pk}").json()
    assert [a["id"] for a in detail["attachments"]] == [photo["id"]]
    image = client.get(photo["url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert image.getvalue().startswith(b"\xff\xd8")
    assert client.get(photo["thumbnail_url"]).status_code == 200
    assert as_user(outsider).get(photo["url"]).status_code == 404

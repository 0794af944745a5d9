"""Integration keys on /api/v1/: scopes, districts, rate limits and the access log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from shapely.geometry import box

from civicgrid.accounts.models import AccessLog, Integration, Membership, Role, Scope, User
from civicgrid.accounts.services import (
    create_integration,
    issue_integration_key,
    revoke_integration_key,
)
from civicgrid.api.tests.test_cases_api import check
from civicgrid.cases.models import Case, Category
from civicgrid.cases.tests.fixtures import EAST_POINT, IntakeFactory
from civicgrid.grids import services as grid_services
from civicgrid.grids.services import GridInput
from civicgrid.grids.tests.fixtures import Tree

KeyFactory = Callable[..., str]


@pytest.fixture(autouse=True)
def _fresh_rate_counters() -> None:
    cache.clear()


@pytest.fixture
def bridge_user(tree: Tree) -> User:
    """The service account of the city's 12345 bridge: takes and files cases district-wide."""
    user = User.objects.create_user(username="svc-12345", password=None, display_name="12345")
    for role in (Role.CALL_TAKER, Role.DISPATCHER):
        Membership.objects.create(user=user, role=role, grid=tree.district)
    return user


@pytest.fixture
def key_with(bridge_user: User) -> KeyFactory:
    """A raw key of a new integration with the given scopes (acting as the bridge)."""
    made = 0

    def make(*scopes: str, rate: int = 60, districts: list[Any] | None = None) -> str:
        nonlocal made
        made += 1
        integration = create_integration(
            name=f"对接系统{made}",
            scopes=list(scopes),
            acting_user=bridge_user,
            rate_limit_per_minute=rate,
            districts=districts,
        )
        _key, raw = issue_integration_key(integration=integration)
        return raw

    return make


def call(method: str, url: str, raw: str, data: dict[str, Any] | None = None) -> Any:
    client = Client(enforce_csrf_checks=True)
    headers = {"Authorization": f"Bearer {raw}"}
    if method == "GET":
        return client.get(url, headers=headers)
    return client.post(
        url, data=json.dumps(data or {}), content_type="application/json", headers=headers
    )


def _intake(category: Category, **overrides: Any) -> dict[str, Any]:
    return {
        "channel": "hotline",
        "category": category.code,
        "description": "桥下有人占道经营",
        "lon": EAST_POINT[0],
        "lat": EAST_POINT[1],
        **overrides,
    }


def _last_log() -> AccessLog:
    row = AccessLog.objects.order_by("-id").first()
    assert row is not None
    return row


def test_a_read_scope_reads_cases_and_the_call_is_logged(
    key_with: KeyFactory, new_case: IntakeFactory
) -> None:
    case = new_case()
    raw = key_with(Scope.CASES_READ)
    listed = call("GET", "/api/v1/cases", raw)
    assert listed.status_code == 200
    assert [c["number"] for c in listed.json()["items"]] == [case.number]
    assert call("GET", f"/api/v1/cases/{case.pk}", raw).status_code == 200
    log = _last_log()
    assert (log.method, log.path, log.status) == ("GET", f"/api/v1/cases/{case.pk}", 200)
    assert log.integration is not None
    assert log.integration.name.startswith("对接系统")
    assert log.key is not None
    assert raw.startswith(log.key.prefix)
    assert AccessLog.objects.count() == 2


def test_a_read_scope_cannot_write(key_with: KeyFactory, category: Category) -> None:
    raw = key_with(Scope.CASES_READ)
    refused = call("POST", "/api/v1/cases", raw, _intake(category))
    assert refused.status_code == 403
    assert "api:cases:write" in refused.json()["detail"]
    assert not Case.objects.exists()
    assert _last_log().status == 403


def test_a_write_scope_files_and_moves_cases(
    key_with: KeyFactory, category: Category, city_unit: Any
) -> None:
    raw = key_with(Scope.CASES_READ, Scope.CASES_WRITE)
    created = call("POST", "/api/v1/cases", raw, _intake(category))
    assert created.status_code == 201, created.content
    case_id = created.json()["id"]
    accepted = call("POST", f"/api/v1/cases/{case_id}/accept", raw, {"note": ""})
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "filed"
    assert list(AccessLog.objects.order_by("id").values_list("status", flat=True)) == [201, 200]


def test_a_write_scope_alone_does_not_read(key_with: KeyFactory, new_case: IntakeFactory) -> None:
    case = new_case()
    raw = key_with(Scope.CASES_WRITE)
    refused = call("GET", f"/api/v1/cases/{case.pk}", raw)
    assert refused.status_code == 403
    assert "api:cases:read" in refused.json()["detail"]


def test_an_open311_key_cannot_call_the_api(key_with: KeyFactory, new_case: IntakeFactory) -> None:
    raw = key_with(Scope.OPEN311_READ, Scope.OPEN311_WRITE)
    refused = call("GET", "/api/v1/cases", raw)
    assert refused.status_code == 403
    assert "api:cases:read" in refused.json()["detail"]


def test_grids_need_their_own_scope(key_with: KeyFactory, tree: Tree) -> None:
    cases_only = key_with(Scope.CASES_READ)
    refused = call("GET", "/api/v1/grids", cases_only)
    assert refused.status_code == 403
    assert "api:grids:read" in refused.json()["detail"]
    assert (
        call(
            "GET", f"/api/v1/locate?lon={EAST_POINT[0]}&lat={EAST_POINT[1]}", cases_only
        ).status_code
        == 403
    )
    grids = key_with(Scope.GRIDS_READ)
    assert call("GET", "/api/v1/grids", grids).status_code == 200
    assert call("GET", f"/api/v1/grids/{tree.east.pk}", grids).status_code == 200
    located = call("GET", f"/api/v1/locate?lon={EAST_POINT[0]}&lat={EAST_POINT[1]}", grids)
    assert located.status_code == 200
    assert located.json()["inside"] is True


def test_an_invalid_or_revoked_key_is_401_and_logged(
    key_with: KeyFactory, bridge_user: User
) -> None:
    forged = call("GET", "/api/v1/cases", "cgk_not-a-key")
    assert forged.status_code == 401
    assert forged.json()["detail"] == "接口密钥无效或已吊销"
    log = _last_log()
    assert (log.status, log.key_id, log.integration_id) == (401, None, None)

    integration = Integration.objects.create(
        name="旧系统", scopes=[Scope.CASES_READ], acting_user=bridge_user
    )
    key, raw = issue_integration_key(integration=integration)
    assert call("GET", "/api/v1/cases", raw).status_code == 200
    revoke_integration_key(key=key)
    revoked = call("GET", "/api/v1/cases", raw)
    assert revoked.status_code == 401
    log = _last_log()
    assert (log.status, log.key_id, log.integration_id) == (401, key.pk, integration.pk)


def test_over_the_rate_limit_is_429_with_retry_after(key_with: KeyFactory, tree: Tree) -> None:
    raw = key_with(Scope.CASES_READ, rate=2)
    assert call("GET", "/api/v1/cases", raw).status_code == 200
    assert call("GET", "/api/v1/cases", raw).status_code == 200
    third = call("GET", "/api/v1/cases", raw)
    assert third.status_code == 429
    assert "每分钟最多 2 次" in third.json()["detail"]
    assert 1 <= int(third["Retry-After"]) <= 61
    assert list(AccessLog.objects.order_by("id").values_list("status", flat=True)) == [
        200,
        200,
        429,
    ]


def test_a_key_limited_to_another_district_sees_and_files_nothing_here(
    key_with: KeyFactory, category: Category, new_case: IntakeFactory, tree: Tree
) -> None:
    case = new_case()
    [other] = grid_services.save_grids(
        items=[GridInput(code="620104", name="第二区", level=0, geometry=box(104, 35, 104.2, 35.1))]
    )
    elsewhere = key_with(Scope.CASES_READ, Scope.CASES_WRITE, districts=[other])
    assert call("GET", "/api/v1/cases", elsewhere).json()["items"] == []
    assert call("GET", f"/api/v1/cases/{case.pk}", elsewhere).status_code == 404
    assert call("POST", f"/api/v1/cases/{case.pk}/accept", elsewhere, {}).status_code == 404
    refused = call("POST", "/api/v1/cases", elsewhere, _intake(category))
    assert refused.status_code == 403
    assert "辖区" in refused.json()["detail"]
    no_place = call("POST", "/api/v1/cases", elsewhere, _intake(category, lon=None, lat=None))
    assert no_place.status_code == 400
    assert Case.objects.count() == 1

    here = key_with(Scope.CASES_READ, Scope.CASES_WRITE, districts=[tree.district])
    assert call("GET", f"/api/v1/cases/{case.pk}", here).status_code == 200
    assert call("POST", "/api/v1/cases", here, _intake(category)).status_code == 201


def test_personal_tokens_and_sessions_are_not_logged(
    call_taker: User, new_case: IntakeFactory
) -> None:
    from civicgrid.accounts.services import create_api_token

    case = new_case()
    _token, raw = create_api_token(user=call_taker, name="个人")
    assert call("GET", f"/api/v1/cases/{case.pk}", raw).status_code == 200
    assert not AccessLog.objects.exists()


def test_the_schema_documents_the_refusals_every_secured_operation_may_answer(
    key_with: KeyFactory, tree: Tree
) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    secured = [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    assert len(secured) > 20
    for path, method, operation in secured:
        assert {"401", "403", "429"} <= set(operation["responses"]), (path, method)
    assert "Retry-After" in schema["paths"]["/api/v1/cases"]["get"]["responses"]["429"]["headers"]
    # And the bodies are what the schema says.
    raw = key_with(Scope.CASES_READ, rate=1)
    assert call("GET", "/api/v1/cases", raw).status_code == 200
    check(schema, "/api/v1/cases", "get", call("GET", "/api/v1/cases", raw))  # 429
    check(schema, "/api/v1/cases", "get", call("GET", "/api/v1/cases", "cgk_forged"))  # 401
    check(schema, "/api/v1/grids", "get", call("GET", "/api/v1/grids", key_with(Scope.CASES_READ)))

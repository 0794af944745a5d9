from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from civicgrid.accounts.models import AccessLog, Integration, IntegrationKey, Scope, User
from civicgrid.accounts.services import (
    IntegrationError,
    authenticate_integration_key,
    create_integration,
    issue_integration_key,
    record_access,
    revoke_integration,
    revoke_integration_key,
    take_rate_slot,
)
from civicgrid.grids.tests.fixtures import DISTRICT, WEST, Tree

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create-api-key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_api_key_prints_a_key_once_that_is_stored_only_as_a_hash(tree: Tree) -> None:
    raw, note = run("FixMyStreet", "--district", DISTRICT, "--rate", "120")
    assert raw.startswith("cgk_")
    assert "\n" not in raw
    assert "不会再次显示" in note
    assert raw not in note
    integration = Integration.objects.get(name="FixMyStreet")
    assert integration.scopes == [Scope.OPEN311_READ, Scope.OPEN311_WRITE]
    assert [g.code for g in integration.districts.all()] == [DISTRICT]
    assert integration.rate_limit_per_minute == 120
    [key] = integration.keys.all()
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[:12]
    # The raw key is nowhere in the database.
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefix, key_hash, name FROM accounts_integrationkey")
        assert all(raw not in str(value) for row in cursor.fetchall() for value in row)
    found = authenticate_integration_key(raw)
    assert found is not None
    assert found.integration == integration
    assert found.last_used_at is None  # the returned row; the stored one is touched
    assert IntegrationKey.objects.get().last_used_at is not None


def test_the_new_integration_acts_as_a_service_account_without_password(tree: Tree) -> None:
    run("12345 平台", "--scope", "api:cases:read")
    integration = Integration.objects.get(name="12345 平台")
    user = integration.acting_user
    assert user.username.startswith("svc-")
    assert not user.has_usable_password()
    assert not user.memberships.exists()
    assert integration.scopes == [Scope.CASES_READ]


def test_create_api_key_for_an_existing_integration_adds_a_key_and_changes_what_is_given(
    tree: Tree,
) -> None:
    first, _ = run("App", "--scope", "open311:read")
    second, _ = run("App", "--scope", "open311:write", "--rate", "5", "--key-name", "第二把")
    assert first != second
    integration = Integration.objects.get(name="App")
    assert integration.keys.count() == 2
    assert integration.scopes == [Scope.OPEN311_WRITE]
    assert integration.rate_limit_per_minute == 5
    assert authenticate_integration_key(first) is not None
    assert IntegrationKey.objects.filter(name="第二把").exists()


def test_create_api_key_acts_as_a_named_user(tree: Tree) -> None:
    clerk = User.objects.create_user(username="clerk", password=None)
    run("Hotline bridge", "--user", "clerk", "--deferred")
    integration = Integration.objects.get(name="Hotline bridge")
    assert integration.acting_user == clerk
    assert integration.deferred_intake
    with pytest.raises(CommandError, match="没有用户"):
        run("Other", "--user", "nobody")


def test_create_api_key_refuses_unknown_or_non_root_districts(tree: Tree) -> None:
    with pytest.raises(CommandError, match="没有网格"):
        run("App", "--district", "999")
    with pytest.raises(CommandError, match="不是辖区"):
        run("App", "--district", WEST)
    assert not Integration.objects.exists()
    with pytest.raises(CommandError):
        run("App", "--scope", "everything")


def test_revoked_keys_and_integrations_stop_at_once(tree: Tree) -> None:
    integration = create_integration(name="App", scopes=[Scope.OPEN311_READ])
    key, raw = issue_integration_key(integration=integration)
    _other, raw2 = issue_integration_key(integration=integration)
    revoke_integration_key(key=key)
    assert authenticate_integration_key(raw) is None
    assert authenticate_integration_key(raw2) is not None
    revoke_integration(integration=integration)
    assert authenticate_integration_key(raw2) is None
    assert integration.revoked_at is not None
    assert not integration.is_active
    with pytest.raises(IntegrationError):
        issue_integration_key(integration=integration)


def test_a_key_stops_when_its_service_account_is_disabled(tree: Tree) -> None:
    integration = create_integration(name="App", scopes=[Scope.OPEN311_READ])
    _key, raw = issue_integration_key(integration=integration)
    User.objects.filter(pk=integration.acting_user_id).update(is_active=False)
    assert authenticate_integration_key(raw) is None
    assert authenticate_integration_key("cg_a_personal_token") is None
    assert authenticate_integration_key("") is None


def test_the_rate_limit_is_a_fixed_window_per_key_per_minute(tree: Tree) -> None:
    integration = create_integration(
        name="App", scopes=[Scope.OPEN311_READ], rate_limit_per_minute=2
    )
    key, _raw = issue_integration_key(integration=integration)
    other, _raw = issue_integration_key(integration=integration)
    minute = 60 * 29_000_000
    assert take_rate_slot(key, now=minute + 1) is None
    assert take_rate_slot(key, now=minute + 2) is None
    assert take_rate_slot(key, now=minute + 50) == 11
    assert take_rate_slot(other, now=minute + 50) is None  # each key counts alone
    assert take_rate_slot(key, now=minute + 60) is None  # a new window


def test_the_access_log_keeps_a_remote_address_only_when_it_is_one(tree: Tree) -> None:
    common: dict[str, Any] = {
        "key": None,
        "method": "GET",
        "path": "/x",
        "status": 200,
        "duration_ms": 1.4,
    }
    assert record_access(remote_addr="::1", **common).remote_addr == "::1"
    assert record_access(remote_addr="unix:/run/gunicorn.sock", **common).remote_addr is None
    assert record_access(remote_addr=None, **common).duration_ms == 1


def test_integration_names_are_unique_and_required(tree: Tree) -> None:
    create_integration(name="App", scopes=[])
    with pytest.raises(IntegrationError):
        create_integration(name="App", scopes=[])
    with pytest.raises(IntegrationError):
        create_integration(name="  ", scopes=[])
    with pytest.raises(IntegrationError):
        create_integration(name="Zero", scopes=[], rate_limit_per_minute=0)


def test_the_admin_issues_a_key_shown_once_and_lists_the_access_log(
    tree: Tree, superuser: User
) -> None:
    integration = create_integration(name="App", scopes=[Scope.OPEN311_READ])
    AccessLog.objects.create(
        at=integration.created_at,
        method="GET",
        path="/open311/v2/services.json",
        status=200,
        duration_ms=3,
    )
    client = Client()
    client.force_login(superuser)
    response = client.post(
        "/admin/accounts/integration/",
        {"action": "issue_key", "_selected_action": [integration.pk]},
    )
    assert response.status_code == 200
    page = response.content.decode()
    [key] = integration.keys.all()
    start = page.index("<code>") + len("<code>")
    raw = page[start : page.index("</code>", start)]
    assert raw.startswith(key.prefix)
    assert authenticate_integration_key(raw) is not None
    assert client.get("/admin/accounts/integration/").status_code == 200
    assert client.get(f"/admin/accounts/integration/{integration.pk}/change/").status_code == 200
    assert client.get("/admin/accounts/integrationkey/").status_code == 200
    client.post(
        "/admin/accounts/integrationkey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert authenticate_integration_key(raw) is None
    log = client.get("/admin/accounts/accesslog/")
    assert log.status_code == 200
    assert "/open311/v2/services.json" in log.content.decode()


def test_the_admin_adds_an_integration_with_a_service_account(tree: Tree, superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    response = client.post(
        "/admin/accounts/integration/add/",
        {
            "name": "Web App",
            "is_active": "on",
            "scopes": [Scope.OPEN311_READ, Scope.OPEN311_WRITE],
            "districts": [tree.district.pk],
            "rate_limit_per_minute": "30",
            "keys-TOTAL_FORMS": "0",
            "keys-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    integration = Integration.objects.get(name="Web App")
    assert integration.scopes == [Scope.OPEN311_READ, Scope.OPEN311_WRITE]
    assert integration.acting_user.username == "svc-web-app"

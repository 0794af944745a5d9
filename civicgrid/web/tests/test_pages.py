from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from civicgrid.accounts.models import User
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.conftest import PASSWORD, with_password

pytestmark = pytest.mark.django_db


def _json_script(html: str, element_id: str) -> Any:
    start = html.index(f'<script id="{element_id}" type="application/json">')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_the_login_page_is_in_chinese_by_default(client: Client) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "用户登录" in html
    assert "网格化社会治理平台" in html


def test_the_map_page_requires_login(client: Client) -> None:
    response = client.get(reverse("grid-map"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('grid-map')}"


def test_the_home_page_requires_login(client: Client) -> None:
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_signs_in_reaches_the_map_and_signs_out(client: Client, dispatcher: User) -> None:
    with_password(dispatcher)
    response = client.post(
        reverse("login"),
        {"username": "wangmin", "password": PASSWORD, "next": reverse("grid-map")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("grid-map")
    page = client.get(reverse("grid-map"))
    assert page.status_code == 200
    assert "王敏" in page.content.decode()

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("grid-map")).status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client: Client, dispatcher: User) -> None:
    with_password(dispatcher)
    response = client.post(reverse("login"), {"username": "wangmin", "password": "wrong"})
    assert response.status_code == 200
    assert "用户名或密码不正确。" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The user name typed is kept (not which of the two was wrong; never the password).
    html = response.content.decode()
    assert re.search(r'<input id="id_username" name="username"[^>]*value="wangmin"', html)
    assert 'value="wrong"' not in html


def test_signing_out_by_get_is_refused(client: Client, dispatcher: User) -> None:
    client.force_login(dispatcher)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("home")).status_code == 200


def test_a_user_changes_the_password_and_signs_in_with_the_new_one(
    client: Client, dispatcher: User
) -> None:
    with_password(dispatcher)
    client.force_login(dispatcher)
    form = client.get(reverse("password_change"))
    assert form.status_code == 200
    assert "修改密码" in form.content.decode()
    new_password = "Jiedao-Wangge-2026!"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert "密码已修改" in client.get(reverse("password_change_done")).content.decode()

    client.post(reverse("logout"))
    assert not client.login(username="wangmin", password=PASSWORD)
    assert client.login(username="wangmin", password=new_password)


def test_a_wrong_old_password_does_not_change_the_password(
    client: Client, dispatcher: User
) -> None:
    with_password(dispatcher)
    client.force_login(dispatcher)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "Abcdef-12345!",
            "new_password2": "Abcdef-12345!",
        },
    )
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    dispatcher.refresh_from_db()
    assert dispatcher.check_password(PASSWORD)


def _field(html: str, name: str) -> str:
    """The ``<div class="field">`` of one field of the password form."""
    at = html.index(f'name="{name}"')
    start = html.rindex('<div class="field', 0, at)
    end = min(i for i in (html.find('<div class="field', at), html.index("</form>", at)) if i > 0)
    return html[start:end]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"old_password": "nope"}, "old_password", "旧密码不正确"),
        ({"new_password2": "Something-else-1"}, "new_password2", "两个密码不一致"),
        (
            {"new_password1": "12345678", "new_password2": "12345678"},
            "new_password2",
            "这个密码太常见了",
        ),
    ],
)
def test_the_password_form_shows_each_refusal_next_to_its_field(
    client: Client, dispatcher: User, data: dict[str, str], field: str, message: str
) -> None:
    with_password(dispatcher)
    client.force_login(dispatcher)
    good = {
        "old_password": PASSWORD,
        "new_password1": "Abcdef-12345!",
        "new_password2": "Abcdef-12345!",
    }
    response = client.post(reverse("password_change"), {**good, **data})
    assert response.status_code == 200
    block = _field(response.content.decode(), field)
    assert "has-error" in block
    assert message in block, block
    dispatcher.refresh_from_db()
    assert dispatcher.check_password(PASSWORD)


def test_the_home_page_shows_the_positions_and_the_size_of_the_scope(
    client: Client, dispatcher: User, grid_worker: User
) -> None:
    client.force_login(dispatcher)
    html = client.get(reverse("home")).content.decode()
    assert "派遣员" in html  # the role
    assert "示范区" in html
    tiles = [("街道/乡镇", 2), ("社区/村", 4), ("三级网格", 8), ("网格员", 1)]
    for label, n in tiles:
        assert f'<span class="tile-n">{n}</span><span class="tile-label">{label}</span>' in html


def test_a_user_without_a_position_is_told_so(client: Client, outsider: User) -> None:
    client.force_login(outsider)
    html = client.get(reverse("home")).content.decode()
    assert "您还没有岗位，请联系系统管理员。" in html
    config = _json_script(client.get(reverse("grid-map")).content.decode(), "map-config")
    assert config["roots"] == []
    assert config["chunks"] == []


def test_the_map_page_carries_the_users_scope_and_the_api_addresses(
    client: Client, dispatcher: User, tree: Tree
) -> None:
    client.force_login(dispatcher)
    html = client.get(reverse("grid-map")).content.decode()
    config = _json_script(html, "map-config")
    assert config["roots"] == [
        {"id": tree.district.pk, "level": 0, "bbox": pytest.approx([103.70, 35.95, 103.90, 36.05])}
    ]
    # Level-3 grids are fetched per subdistrict.
    assert [c["id"] for c in config["chunks"]] == [tree.west.pk, tree.east.pk]
    assert config["api"] == {
        "geojson": "/api/v1/grids/geojson",
        "grids": "/api/v1/grids",
        "detail": "/api/v1/grids/",
        "locate": "/api/v1/locate",
    }
    assert config["levels"] == {"0": "区县", "1": "街道/乡镇", "2": "社区/村", "3": "网格"}
    strings = _json_script(html, "map-i18n")
    assert strings["outside"] == "不在辖区内"
    assert "vendor/leaflet/leaflet.js" in html
    assert "vendor/htmx/htmx.min.js" in html


def test_a_community_map_is_fetched_as_one_chunk(
    client: Client, community_staff: User, tree: Tree
) -> None:
    client.force_login(community_staff)
    config = _json_script(client.get(reverse("grid-map")).content.decode(), "map-config")
    assert [r["id"] for r in config["roots"]] == [tree.community_a.pk]
    assert [c["id"] for c in config["chunks"]] == [tree.community_a.pk]


def test_a_grid_workers_map_covers_only_the_own_grid(
    client: Client, grid_worker: User, tree: Tree
) -> None:
    client.force_login(grid_worker)
    config = _json_script(client.get(reverse("grid-map")).content.decode(), "map-config")
    assert [r["id"] for r in config["roots"]] == [tree.grid_a1.pk]
    assert [c["id"] for c in config["chunks"]] == [tree.grid_a1.pk]


def test_without_a_basemap_the_map_page_names_no_tile_server(
    client: Client, dispatcher: User, settings: Settings
) -> None:
    settings.CIVICGRID_BASEMAP_URL = ""
    client.force_login(dispatcher)
    html = client.get(reverse("grid-map")).content.decode()
    assert _json_script(html, "map-config")["basemap"]["url"] == ""
    assert 'class="no-basemap"' in html


def test_a_configured_basemap_reaches_the_map(
    client: Client, dispatcher: User, settings: Settings
) -> None:
    settings.CIVICGRID_BASEMAP_URL = "https://tiles.example.cn/{z}/{x}/{y}.png"
    settings.CIVICGRID_BASEMAP_LABELS_URL = "https://tiles.example.cn/labels/{z}/{x}/{y}.png"
    settings.CIVICGRID_BASEMAP_ATTRIBUTION = "© 示例地图"
    client.force_login(dispatcher)
    basemap = _json_script(client.get(reverse("grid-map")).content.decode(), "map-config")[
        "basemap"
    ]
    assert basemap == {
        "url": "https://tiles.example.cn/{z}/{x}/{y}.png",
        "labelsUrl": "https://tiles.example.cn/labels/{z}/{x}/{y}.png",
        "attribution": "© 示例地图",
    }


def test_switching_to_english_shows_the_map_page_in_english(
    client: Client, dispatcher: User
) -> None:
    client.force_login(dispatcher)
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("grid-map")}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("grid-map")
    html = response.content.decode()
    assert '<html lang="en">' in html
    for text in ("Grid map", "Find a grid", "Locate a point", "Coordinate system", "Sign out"):
        assert text in html
    assert "网格搜索" not in html
    strings = _json_script(html, "map-i18n")
    assert strings["outside"] == "Outside the jurisdiction"
    assert strings["areaFormat"] == "{km2} km² ({m2} m²)"
    assert _json_script(html, "map-config")["levels"]["1"] == "Subdistrict / town"

    # And back.
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("grid-map")}, follow=True
    )
    assert "网格搜索" in response.content.decode()


def test_english_covers_the_login_page_and_the_admin(client: Client, superuser: User) -> None:
    client.cookies["django_language"] = "en"
    assert "Sign in" in client.get(reverse("login")).content.decode()
    client.force_login(superuser)
    html = client.get(reverse("admin:index")).content.decode()
    assert '<html lang="en"' in html
    assert "civicgrid grid-based governance platform" in html  # the site header
    for name in ("Accounts and positions", "Grid", "Handling unit", "Position", "User"):
        assert f">{name}</a>" in html
    assert "网格" not in html


def test_the_admin_index_renders_in_chinese_for_a_superuser(
    client: Client, superuser: User
) -> None:
    client.force_login(superuser)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    assert "civicgrid 网格化社会治理平台" in html  # the site header
    assert "系统管理" in html  # the index title
    assert ">网格</a>" in html
    assert ">处置单位</a>" in html
    assert "注销" in html or "退出" in html  # Django's own Chinese


def test_the_health_check_reports_the_database_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    report = response.json()
    assert report["database"]["status"] == "ok"
    assert report["status"] in {"ok", "degraded"}


def test_pages_are_chinese_by_default_even_for_an_english_browser(client: Client) -> None:
    page = client.get("/login/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert page.status_code == 200
    assert "登录" in page.content.decode()
    assert page["Content-Language"] == "zh-hans"

"""The map page in a real Chromium, against a live server and the shared small district.

The tree (civicgrid/grids/tests/fixtures.py): 示范区 → 西街道 (甲社区, 乙社区) and
东街道 (丙社区, 丁社区) → two grids each, lon 103.70–103.90, lat 35.95–36.05.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.grids import crs
from civicgrid.grids.services import assign_grid_worker
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.conftest import PASSWORD, TIMEOUT_MS, with_password

pytestmark = pytest.mark.browser

SCREENSHOT = Path(
    os.environ.get("CIVICGRID_MAP_SCREENSHOT", Path(tempfile.gettempdir()) / "map.png")
)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile at 1366×768 that asks for Chinese."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def _sign_in(page: Page, base: str, username: str) -> None:
    """Open the map, get sent to the login form, sign in, land on the map."""
    page.goto(f"{base}/map/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/map/$"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/map/")


def _area_text(area_m2: float) -> str:
    """What the panel shows for an area (formatArea in map.js)."""
    km2 = area_m2 / 1e6
    km2_text = f"{km2:.1f}" if km2 >= 10 else f"{km2:.2f}" if km2 >= 0.01 else f"{km2:.4f}"
    return f"{km2_text} 平方公里（{int(area_m2 + 0.5):,} 平方米）"


def _wait_for_count(page: Page, level: int, n: int) -> None:
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length === n",
        arg=[f"path.grid-level-{level}.leaflet-interactive", n],
    )


def _wait_until_still(page: Page) -> None:
    """Until the map has finished panning, zooming or flying."""
    page.wait_for_function("() => !document.getElementById('map').hasAttribute('data-moving')")


def test_the_map_shows_searches_and_locates_the_grid_tree(
    context: BrowserContext,
    live_server: LiveServer,
    tree: Tree,
    dispatcher: User,
    grid_worker: User,
) -> None:
    with_password(dispatcher)
    second = User.objects.create_user(username="qianjin", display_name="钱进", phone="13900000002")
    assign_grid_worker(grid=tree.grid_a1, user=second)

    base = live_server.url
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    _sign_in(page, base, "wangmin")
    expect(page.locator(".usernav .who")).to_have_text("王敏")

    # The district, its subdistricts and communities are drawn at once.
    _wait_for_count(page, 0, 1)
    _wait_for_count(page, 1, 2)
    _wait_for_count(page, 2, 4)
    # The whole district is in view, too far out for the level-3 grids; the
    # layer control brings them (and takes them away again).
    expect(page.locator("#map-status")).to_have_text("放大地图以显示三级网格")
    overlays = page.locator(".leaflet-control-layers-overlays label")
    expect(overlays).to_have_text(["区县", "街道/乡镇", "社区/村", "网格"])
    grid_toggle = overlays.nth(3).locator("input")
    expect(grid_toggle).not_to_be_checked()
    _wait_for_count(page, 3, 0)
    grid_toggle.check()
    _wait_for_count(page, 3, 8)
    grid_toggle.uncheck()
    _wait_for_count(page, 3, 0)
    grid_toggle.check()
    _wait_for_count(page, 3, 8)
    assert page.locator("#map .leaflet-tile-pane img").count() == 0
    assert page.locator("#map svg").count() == 2  # areas and outlines
    # Clicking a polygon shows the grid's path, code, area and workers.
    panel = page.locator("#grid-panel")
    page.locator("path.grid-code-620103001001001").click()
    expect(panel.locator("h2")).to_have_text("甲社区第1网格")
    expect(panel.locator(".crumbs li")).to_have_text(
        ["示范区", "西街道", "甲社区", "甲社区第1网格"]
    )
    facts = panel.locator(".facts dd")
    expect(facts).to_have_text(["620103001001001", "网格", _area_text(tree.grid_a1.area_m2)])
    expect(panel.locator(".workers li")).to_have_text(["赵磊13800000001", "钱进13900000002"])
    expect(panel.locator(".workers a").first).to_have_attribute("href", "tel:13800000001")
    page.click("#grid-panel-close")
    expect(panel).to_be_hidden()

    # A community (the grids hidden, so the click reaches it): its children, no workers.
    grid_toggle.uncheck()
    page.locator("path.grid-code-620103002002").click()
    expect(panel.locator("h2")).to_have_text("丁社区")
    expect(panel.locator(".panel-kicker")).to_have_text("社区/村")
    expect(facts.nth(3)).to_have_text("2")  # its grids
    expect(panel.locator(".workers")).to_have_count(0)
    page.click("#grid-panel-close")
    grid_toggle.check()

    # Search by name: a list of matches; a click flies to one and opens it.
    page.fill("#grid-q", "乙社区")
    page.press("#grid-q", "Enter")
    results = page.locator("#search-results .result")
    expect(results).to_have_count(3)  # the community and its two grids
    expect(page.locator("#search-status")).to_have_text("找到 3 个网格")
    results.filter(has_text="乙社区第2网格").click()
    expect(panel.locator("h2")).to_have_text("乙社区第2网格")
    expect(facts.first).to_have_text("620103001002002")
    expect(panel).to_contain_text("暂未配置网格员")
    expect(page.locator(".leaflet-highlight-pane path")).to_have_count(1)

    # Search by code: an exact code opens the grid at once.
    page.fill("#grid-q", "620103002002002")
    page.press("#grid-q", "Enter")
    expect(results).to_have_count(1)
    expect(panel.locator("h2")).to_have_text("丁社区第2网格")
    expect(panel.locator(".crumbs li")).to_have_text(
        ["示范区", "东街道", "丁社区", "丁社区第2网格"]
    )
    # Typed and sent at once on a slow line: what was sent opens, not the last search.
    page.click("#grid-panel-close")

    def slow(route: Route) -> None:
        time.sleep(0.6)  # longer than the 300 ms the page waits while one types
        route.continue_()

    page.route(re.compile(r"/api/v1/grids\?"), slow)
    page.fill("#grid-q", "620103001001002")
    page.press("#grid-q", "Enter")
    expect(panel.locator("h2")).to_have_text("甲社区第2网格")
    expect(results).to_have_count(1)
    page.unroute(re.compile(r"/api/v1/grids\?"))
    page.fill("#grid-q", "不存在的网格")
    page.press("#grid-q", "Enter")
    expect(page.locator("#search-status")).to_have_text("没有找到匹配的网格。")
    expect(results).to_have_count(0)

    # Locate a typed point, in WGS-84 and in GCJ-02, and one outside.
    located = page.locator("#locate-result")
    page.fill("#locate-lon", "103.72")
    page.fill("#locate-lat", "35.97")
    page.click("#locate-form button[type=submit]")
    expect(located.locator(".crumbs li")).to_have_text(
        ["示范区", "西街道", "甲社区", "甲社区第1网格"]
    )
    gcj_lon, gcj_lat = crs.from_storage(103.87, 36.03, crs.GCJ02)
    page.fill("#locate-lon", f"{gcj_lon:.7f}")
    page.fill("#locate-lat", f"{gcj_lat:.7f}")
    page.select_option("#locate-crs", crs.GCJ02)
    page.click("#locate-form button[type=submit]")
    expect(located.locator(".crumbs li").last).to_have_text("丁社区第2网格")
    page.fill("#locate-lon", "104.5")
    page.fill("#locate-lat", "36.5")
    page.select_option("#locate-crs", crs.WGS84)
    page.click("#locate-form button[type=submit]")
    expect(located.locator(".outside")).to_have_text("不在辖区内")

    # Or pick the point on the map: the grid under it is located, not opened.
    page.click("#grid-panel-close")
    _wait_until_still(page)
    page.click(".map-home")  # back to the whole district
    _wait_until_still(page)
    if not grid_toggle.is_checked():  # zooming out past the grids' zoom hides them
        grid_toggle.check()
    _wait_for_count(page, 3, 8)
    page.click("#locate-pick")
    expect(page.locator("#map.picking")).to_have_count(1)
    page.locator("path.grid-code-620103002002001").click()
    expect(located.locator(".crumbs li").last).to_have_text("丁社区第1网格")
    expect(panel).to_be_hidden()
    expect(page.locator("#map.picking")).to_have_count(0)
    assert page.input_value("#locate-crs") == crs.WGS84
    located.locator("button").click()  # 查看网格详情
    expect(panel.locator("h2")).to_have_text("丁社区第1网格")

    # One grid open for the screenshot.
    page.fill("#grid-q", "620103001001001")
    page.press("#grid-q", "Enter")
    expect(panel.locator("h2")).to_have_text("甲社区第1网格")
    _wait_until_still(page)
    if not grid_toggle.is_checked():
        grid_toggle.check()
    _wait_for_count(page, 3, 8)
    page.mouse.move(0, 0)
    page.screenshot(path=str(SCREENSHOT))

    # The same page in English, words from the template and from map.js alike.
    page.select_option(".usernav .lang select", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".map-side h2").first).to_have_text("Find a grid")
    expect(overlays.nth(3)).to_have_text("Grid")
    expect(page.locator("#map-status")).to_have_text("Zoom in to show the level-3 grids")
    _wait_for_count(page, 2, 4)
    page.locator("path.grid-code-620103002002").click()
    expect(panel.locator(".facts dt")).to_have_text(["Code", "Type", "Area", "Child grids"])
    expect(panel.locator(".panel-kicker")).to_have_text("Community / village")

    assert errors == []
    # No basemap is configured: every request went to the live server.
    assert requested
    host = urlsplit(base).netloc
    outside = [url for url in requested if urlsplit(url).netloc != host]
    assert outside == [], outside


def test_a_configured_basemap_is_drawn_under_the_grids(
    context: BrowserContext,
    live_server: LiveServer,
    settings: Settings,
    tree: Tree,
    unit_handler: User,
) -> None:
    # Tiles "from" the live server itself: nothing leaves the machine, and the
    # requests show the tile layer at work (they are 404s, which Leaflet shrugs off).
    settings.CIVICGRID_BASEMAP_URL = f"{live_server.url}/tiles/vec/{{z}}/{{x}}/{{y}}.png"
    settings.CIVICGRID_BASEMAP_LABELS_URL = f"{live_server.url}/tiles/cva/{{z}}/{{x}}/{{y}}.png"
    settings.CIVICGRID_BASEMAP_ATTRIBUTION = "© 测试底图"
    with_password(unit_handler)  # 陈静: her unit serves 东街道

    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    _sign_in(page, live_server.url, "chenjing")

    # Only the unit's subdistrict, its communities and (once shown) its grids.
    _wait_for_count(page, 1, 1)
    _wait_for_count(page, 2, 2)
    page.locator(".leaflet-control-layers-overlays input").nth(3).check()
    _wait_for_count(page, 3, 4)
    _wait_for_count(page, 0, 0)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("© 测试底图")
    expect(page.locator("#map.no-basemap")).to_have_count(0)
    page.wait_for_function(
        "() => document.querySelectorAll('.leaflet-tile-pane img.leaflet-tile').length > 0"
    )
    assert any("/tiles/vec/" in url for url in requested)
    assert any("/tiles/cva/" in url for url in requested)
    # Grids of the other subdistrict are neither drawn nor found.
    page.fill("#grid-q", "甲社区")
    page.press("#grid-q", "Enter")
    expect(page.locator("#search-status")).to_have_text("没有找到匹配的网格。")

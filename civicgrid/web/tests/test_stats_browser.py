"""The big screen (1920×1080) and the leader dashboard (1366×768) in a real Chromium
against a live server: the charts are drawn (ECharts canvases), the choropleth has
its areas, a click drills down one level and the trail goes back up, and the big
screen fetches new figures by itself. Screenshots (``bigscreen.png``,
``dashboard.png``) go to ``CIVICGRID_ARTIFACTS`` (default ``var/artifacts/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases.models import Case, Status
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.conftest import ARTIFACTS, PASSWORD, TIMEOUT_MS, with_password

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: More places for the map: grids D1, B2 and C2.
POINTS = [(103.825, 36.025), (103.775, 36.025), (103.875, 35.975), (103.826, 36.024)]


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[[int, int], BrowserContext]]:
    opened: list[BrowserContext] = []

    def new(width: int, height: int) -> BrowserContext:
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    yield new
    for context in opened:
        context.close()


def _sign_in(page: Page, base: str, path: str) -> None:
    page.goto(f"{base}{path}")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.fill("#id_username", "leader")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}{path}")


def _loaded(page: Page, times: int = 1) -> None:
    page.wait_for_function(
        "n => Number(document.body.dataset.loaded || 0) >= n", arg=times, timeout=TIMEOUT_MS
    )


def _charts_drawn(page: Page) -> None:
    for name in ("trend", "categories", "channels"):
        expect(page.locator(f'[data-chart="{name}"] canvas').first).to_be_attached()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.wait_for_timeout(600)  # the charts' entry animation
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_big_screen_and_the_dashboard_draw_drill_down_and_refresh(
    contexts: Callable[[int, int], BrowserContext],
    live_server: LiveServer,
    tree: Tree,
    leader: User,
    drive: Callable[[str], Case],
    new_case: IntakeFactory,
) -> None:
    with_password(leader)
    for status in (Status.CLOSED, Status.HANDLED, Status.RETURNED, Status.PARKED):
        drive(status)
    new_case(lon=WEST_POINT[0], lat=WEST_POINT[1])
    for lon, lat in POINTS:
        new_case(lon=lon, lat=lat)
    received = Case.objects.count()
    base = live_server.url

    # -- the big screen, 1920×1080, fetching every 10 seconds
    screen = contexts(1920, 1080).new_page()
    errors: list[str] = []
    screen.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(screen, base, "/stats/screen/?refresh=10")
    _loaded(screen)
    _charts_drawn(screen)
    expect(screen.locator("path.stats-area")).to_have_count(2)
    expect(screen.locator('[data-kpi="received"] .kpi-n')).to_have_text(str(received))
    expect(screen.locator(".screen-feed li")).to_have_count(8)
    expect(screen.locator(".stats-league tbody tr")).to_have_count(1)
    expect(screen.locator(".stats-league .band")).not_to_have_text("–")
    expect(screen.locator(".leaflet-heatmap-layer")).to_be_attached()
    assert screen.locator("[data-map]").get_attribute("data-heat-points") not in (None, "0")
    # Areas are coloured by their cases: the busier east darker than the west.
    fills = screen.eval_on_selector_all(
        "path.stats-area", "ps => ps.map(p => p.getAttribute('fill'))"
    )
    assert len(set(fills)) == 2, fills
    _shot(screen, "bigscreen.png")

    # A new case comes in: the screen shows it without reloading the page.
    screen.evaluate("window.__stillHere = true")
    new_case()
    expect(screen.locator('[data-kpi="received"] .kpi-n')).to_have_text(
        str(received + 1), timeout=30_000
    )
    assert screen.evaluate("window.__stillHere") is True

    # -- the dashboard, 1366×768
    page = contexts(1366, 768).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(page, base, "/stats/")
    _loaded(page)
    _charts_drawn(page)
    expect(page.locator("path.stats-area")).to_have_count(2)
    expect(page.locator(".stats-areas tbody tr")).to_have_count(2)
    _shot(page, "dashboard.png")

    # Drill down into 东街道 (the second area, by code): its two communities.
    page.locator("path.stats-area").nth(1).click()
    expect(page).to_have_url(re.compile(rf"grid={tree.east.pk}"))
    expect(page.locator("[data-map]")).to_have_attribute("data-grid", str(tree.east.pk))
    expect(page.locator(".stats-areas tbody tr td.name")).to_have_text(["丙社区", "丁社区"])
    expect(page.locator('[data-kpi="received"] .kpi-n')).to_have_text(str(received + 1 - 2))
    expect(page.locator("[data-scope-name]")).to_have_text("东街道")
    east_export = page.locator('a[data-export="unit"][data-format="xlsx"]').first
    expect(east_export).to_have_attribute("href", re.compile(rf"grid={tree.east.pk}"))
    _shot(page, "dashboard-drilled.png")

    # … and back up by the trail.
    page.locator(".stats-trail a", has_text="示范区").click()
    expect(page.locator("[data-map]")).to_have_attribute("data-grid", str(tree.district.pk))
    expect(page.locator(".stats-areas tbody tr td.name")).to_have_text(["西街道", "东街道"])
    assert errors == []

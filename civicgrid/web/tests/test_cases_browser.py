"""The case list and the case page in a real Chromium at 1366×768, against a live server.

The dispatcher filters the list down to the cases waiting for dispatch, opens one,
dispatches it to the suggested unit with one click and sees the timeline grow; the
unit's handler acknowledges it and reports back with an after-photo from the file
input. Screenshots of every page go to ``CIVICGRID_ARTIFACTS`` (default
``var/artifacts/``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import BrowserContext, FilePayload, Page, expect
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases.models import Case, Status, Urgency
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.web.tests.conftest import ARTIFACTS, sign_in, with_password

pytestmark = [
    pytest.mark.browser,
    # Flushed without re-creating content types, so that a later test with serialized
    # rollback in the same process (test_concurrency) finds the database it expects.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _shot(page: Page, name: str, *, full: bool = False) -> None:
    """The screen as the user sees it (and, with ``full``, the whole page too)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / f"cases-{name}.png"))
    if full:
        page.screenshot(path=str(ARTIFACTS / f"cases-{name}-full.png"), full_page=True)


def _photo() -> FilePayload:
    image = Image.new("RGB", (800, 600), (222, 232, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 380, 680, 460), fill=(90, 96, 104))  # the cleared pavement
    draw.ellipse((330, 140, 470, 280), fill=(250, 200, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return FilePayload(name="after.jpg", mimeType="image/jpeg", buffer=buffer.getvalue())


def _watch(page: Page, base: str) -> tuple[list[str], list[str]]:
    """Page errors, and requests that left the live server."""
    errors: list[str] = []
    outside: list[str] = []
    host = urlsplit(base).netloc
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if urlsplit(request.url).netloc != host
            and not request.url.startswith(("data:", "blob:"))
            else None
        ),
    )
    return errors, outside


def test_a_dispatcher_filters_opens_and_dispatches_a_case_in_one_click(
    desk: Callable[[], BrowserContext],
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    drive: Callable[[str], Case],
    new_case: IntakeFactory,
    dispatcher: User,
    unit_handler: User,
    city_unit: HandlingUnit,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    with_password(dispatcher)
    with_password(unit_handler)
    target = drive(Status.FILED)
    urgent = new_case(description="井盖缺失，已有车辆颠簸", urgency=Urgency.URGENT)
    drive(Status.FILED)
    drive(Status.DISPATCHED)
    drive(Status.CLOSED)
    new_case(
        lon=WEST_POINT[0],
        lat=WEST_POINT[1],
        description="西街道小区门口垃圾满溢",
        address="西街 12 号",
    )
    for description in ("夜间施工噪音扰民", "人行道护栏破损", "共享单车乱停放"):
        new_case(description=description)
    base = live_server.url

    # -- the dispatcher's list, filtered to what waits for dispatch ------------------------
    page = desk().new_page()
    errors, outside = _watch(page, base)
    sign_in(page, base, "wangmin", "/cases/")
    rows = page.locator("#case-table tbody tr")
    expect(rows).to_have_count(9)
    expect(page.locator("#task-badge .count")).to_have_text("2")  # the two filed cases
    page.locator(".filter-status label.chip", has_text="待派遣").click()
    expect(page).to_have_url(re.compile(r"/cases/\?.*status=filed"))
    expect(rows).to_have_count(2)
    page.select_option("#cf_sort", "urgent")
    expect(rows).to_have_count(2)
    page.locator(".filter-status label.chip", has_text="待受理").click()
    expect(rows).to_have_count(7)
    expect(rows.first.locator(".col-number")).to_have_text(urgent.number)  # 紧急 first
    expect(rows.first.locator(".col-requester")).to_have_text("张** 139****5678")  # masked
    _shot(page, "list")
    page.locator(".filter-status label.chip", has_text="待受理").click()
    expect(rows).to_have_count(2)

    # -- the case page: facts, the map with its grid, the actions this user has -------------
    page.click(f"text={target.number}")
    expect(page).to_have_url(f"{base}/cases/{target.pk}/")
    expect(page.locator(".case-head .status")).to_have_text("待派遣")
    expect(page.locator(".grid-path li")).to_have_text(
        ["示范区", "东街道", "丙社区", "丙社区第1网格"]
    )
    expect(page.locator(".case-map[data-grid='620103002001001']")).to_have_count(1)
    expect(page.locator(".case-map path.case-grid")).to_have_count(1)
    expect(page.locator(".case-map path.case-point")).to_have_count(1)
    expect(page.locator(".case-facts")).to_contain_text("张先生")  # acting on it: shown
    actions = page.locator(".actions-card details.action > summary")
    expect(actions).to_have_text(["派遣", "人工定位", "并单", "申请作废"])
    expect(page.locator("#id_dispatch_unit")).to_have_value(str(city_unit.pk))
    expect(page.locator(".timeline .event")).to_have_count(2)  # 登记, 受理
    _shot(page, "page", full=True)

    # -- one click dispatches it; the page updates in place -----------------------------
    page.locator("#action-dispatch button[type=submit]").click()
    expect(page.locator(".case-page .alert.success")).to_have_text("已完成：派遣")
    expect(page.locator(".case-head .status")).to_have_text("待签收")
    events = page.locator(".timeline .event")
    expect(events).to_have_count(3)
    expect(events.last.locator(".event-head strong")).to_have_text("派遣")
    expect(events.last.locator(".event-who")).to_have_text("王敏 · 派遣员")
    expect(events.last.locator(".event-detail")).to_have_text(
        "派往 城管执法局东街道中队（按建议单位）"
    )
    expect(actions).to_have_text(["人工定位", "申请作废"])
    expect(page.locator("#task-badge .count")).to_have_text("1")  # counted again at once
    expect(page).to_have_url(f"{base}/cases/{target.pk}/")
    _shot(page, "dispatched")
    assert Case.objects.get(pk=target.pk).status == Status.DISPATCHED

    # -- the unit acknowledges and reports back with an after-photo ------------------------
    unit_page = desk().new_page()
    unit_errors, unit_outside = _watch(unit_page, base)
    sign_in(unit_page, base, "chenjing", f"/cases/{target.pk}/")
    unit_actions = unit_page.locator(".actions-card details.action > summary")
    expect(unit_actions).to_have_text(["签收", "回退"])
    unit_page.locator("#action-acknowledge button[type=submit]").click()
    expect(unit_page.locator(".case-head .status")).to_have_text("处置中")
    expect(unit_actions).to_have_text(["处置反馈", "回退", "申请延期"])
    unit_page.fill("#id_handle_result", "已劝离摊贩，恢复通行")
    unit_page.set_input_files("#id_handle_photos", [_photo()])
    unit_page.locator("#action-handle button[type=submit]").click()
    expect(unit_page.locator(".case-head .status")).to_have_text("待核查")
    after = unit_page.locator(".photo-after .photos img")
    expect(after).to_have_count(1)
    unit_page.wait_for_function(
        "() => { const i = document.querySelector('.photo-after img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(unit_page.locator(".timeline .event").last).to_contain_text("附照片 1 张")
    _shot(unit_page, "handled", full=True)
    unit_page.locator(".photo-after a.photo").click()
    expect(unit_page.locator("dialog.lightbox")).to_be_visible()
    unit_page.locator(".lightbox-close").click()
    expect(unit_page.locator("dialog.lightbox")).to_be_hidden()

    # -- the dispatcher's tasks: one filed case left ---------------------------------------
    page.goto(f"{base}/notifications/")
    expect(page.locator("#case-table tbody tr")).to_have_count(1)
    expect(page.locator("#task-badge .count")).to_have_text("1")
    _shot(page, "tasks")

    assert errors + unit_errors == []
    assert outside + unit_outside == []

"""A hotline call from intake to dispatch in a real Chromium at 1366×768, against a live
server.

The call-taker types the description, finds the category by its pinyin initials,
clicks the map, sees the grid path, and accepts with the keyboard; the dispatcher
sends the case from the queue with one click. Screenshots of both pages go to
``CIVICGRID_ARTIFACTS`` (default ``var/artifacts/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases.models import Case, Category, Status
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.web.tests.conftest import ARTIFACTS, sign_in, with_password
from civicgrid.web.tests.test_cases_browser import _watch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"intake-{name}.png"))


def test_a_call_is_taken_in_by_keyboard_and_map_and_dispatched_in_one_click(
    desk: Callable[[], BrowserContext],
    live_server: LiveServer,
    drive: Callable[[str], Case],
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    category: Category,
    city_unit: HandlingUnit,
    tmp_path: Path,
) -> None:
    with_password(call_taker)
    with_password(dispatcher)
    # Some work already in the queue.
    drive(Status.FILED)
    drive(Status.RETURNED)
    base = live_server.url

    # -- the call-taker: description, category by pinyin, a click on the map, accept -------------
    page = desk().new_page()
    errors, outside = _watch(page, base)
    sign_in(page, base, "liufang", "/intake/")
    page.wait_for_selector("html[data-intake-ready]", state="attached")
    expect(page.locator("#id_description")).to_be_focused()
    page.keyboard.type("幸福路桥下有人占道摆摊，影响通行")
    # Accepting too early: each missing thing is said next to its field, the text kept.
    page.keyboard.press("Alt+A")
    expect(page.locator(".intake-errors")).to_be_visible()
    expect(page.locator(".field-request_type .errorlist")).to_have_text("请选择诉求类型")
    expect(page.locator(".field-category .errorlist")).to_have_text("请选择类别（小类）")
    expect(page.locator("#location-errors .errorlist")).to_contain_text("受理前请先确定位置")
    expect(page.locator("#id_description")).to_have_value("幸福路桥下有人占道摆摊，影响通行")
    expect(page.locator("#id_request_type_0")).to_be_focused()  # the first problem
    page.mouse.move(0, 0)
    _shot(page, "errors")
    page.locator("label.choice", has_text="投诉").click()
    page.keyboard.press("Alt+L")
    expect(page.locator("#id_category_q")).to_be_focused()
    page.keyboard.type("zdjy")
    option = page.locator("#category-hits [role=option]")
    expect(option.first).to_contain_text("占道经营（测试）")
    page.keyboard.press("Enter")
    expect(page.locator("#category-chosen .chosen-path")).to_have_text(
        "街面秩序（测试） › 占道经营（测试）"
    )
    expect(page.locator("#id_category")).to_have_value("T0502")
    expect(page.locator("#id_address")).to_be_focused()
    page.keyboard.type("丙社区幸福路桥下")
    expect(page.locator("#place-hits [role=option]").first).to_contain_text("丙社区")
    page.keyboard.press("Escape")  # the address stays as typed; the map gives the point
    map_box = page.locator("#intake-map")
    expect(map_box).to_have_attribute("data-ready", "")
    label = page.locator(".intake-label", has_text="丙社区")
    expect(label).to_be_visible()
    box = label.bounding_box()
    assert box is not None
    # Left of the community's label, which sits on the line between its two grids.
    page.mouse.click(box["x"] + box["width"] / 2 - 40, box["y"] + box["height"] / 2)
    expect(page.locator("#place-result .grid-path li")).to_have_text(
        ["示范区", "东街道", "丙社区", "丙社区第1网格"]
    )
    expect(page.locator("#intake-map path.intake-grid")).to_have_count(1)
    # What was corrected no longer says it is wrong.
    expect(page.locator(".intake-form .errorlist")).to_have_count(0)
    expect(page.locator(".intake-errors")).to_have_count(0)
    expect(page.locator("#duplicates")).to_contain_text("附近没有近期的同类案件")
    page.locator("#id_requester_name").fill("张先生")
    page.locator("#id_requester_phone").fill("13912345678")
    page.mouse.move(0, 0)
    _shot(page, "call")
    page.keyboard.press("Alt+A")
    expect(page).to_have_url(re.compile(r"/intake/\?last=\d+$"))
    expect(page.locator(".intake-last")).to_contain_text("已受理，待派遣")
    expect(page.locator("#id_description")).to_be_focused()  # ready for the next call
    expect(page.locator("#id_description")).to_have_value("")
    _shot(page, "accepted")
    case = Case.objects.get(description="幸福路桥下有人占道摆摊，影响通行")
    assert case.status == Status.FILED
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.address == "丙社区幸福路桥下"
    assert case.request_type == "complaint"

    # -- the dispatcher: the case in the queue, its unit chosen, one click ---------------------------
    queue = desk().new_page()
    queue_errors, queue_outside = _watch(queue, base)
    sign_in(queue, base, "wangmin", "/dispatch/")
    expect(queue.locator("#task-badge .count")).to_have_text("3")
    row = queue.locator(f'#case-table tr[data-case="{case.pk}"]')
    expect(row).to_be_visible()
    expect(queue.locator("#case-table tbody tr")).to_have_count(3)
    expect(row.locator("select[name=unit]")).to_have_value(str(city_unit.pk))
    expect(queue.locator(".sent-back")).to_contain_text("非我单位职责")
    queue.mouse.move(0, 0)
    _shot(queue, "queue")
    row.locator("button.dispatch-button").click()
    expect(row).to_have_count(0)
    expect(queue.locator("#toast .toast")).to_have_text(
        f"案件 {case.number} 已派遣至 城管执法局东街道中队"
    )
    expect(queue.locator("#case-table tbody tr")).to_have_count(2)
    expect(queue.locator("#task-badge .count")).to_have_text("2")  # counted again at once
    _shot(queue, "dispatched")
    case.refresh_from_db()
    assert case.status == Status.DISPATCHED
    assert case.lead_unit_id == city_unit.pk

    # -- the rest of the page at once, to one unit --------------------------------------------------
    queue.locator("#select-all").click()
    expect(queue.locator('#case-table input[name="case"]:checked')).to_have_count(2)
    queue.select_option("#bulk_unit", str(city_unit.pk))
    queue.locator("#bulk-dispatch button[type=submit]").click()
    expect(queue.locator(".messages li.success")).to_contain_text(
        "已派遣 2 件至 城管执法局东街道中队"
    )
    expect(queue.locator("#case-table .empty")).to_be_visible()
    assert not Case.objects.filter(status__in=[Status.FILED, Status.RETURNED]).exists()

    assert errors + queue_errors == []
    assert outside + queue_outside == []

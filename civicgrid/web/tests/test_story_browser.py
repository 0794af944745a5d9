"""The whole story of one problem, with real clicks in a real Chromium against a live
server, each step by the person whose job it is, signed in through the login page.

A citizen reports a broken pavement on the portal from a phone (no account): a
category, a description, the phone's location, a photo; gets a tracking code. The
call-taker accepts it (受理: ``new`` → ``filed``), the dispatcher dispatches it from
the queue to the suggested unit, the unit acknowledges it (签收) in its inbox and
reports back on the case page with a result and an after-photo, the grid worker
verifies it on site from a phone (pass, with a photo), the shift supervisor closes it
from the desk (this deployment closes by hand: ``CIVICGRID_CLOSE_ON_VERIFY`` off),
and the citizen follows it by code and phone and rates it with a comment.

Every page is saved to ``CIVICGRID_ARTIFACTS`` as ``story-NN-<page>.png``, in story order.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, FilePayload, Geolocation, Page, expect
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases.models import Action, AttachmentKind, Case, Category, Channel, Status
from civicgrid.cases.tests.fixtures import EAST_POINT
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.conftest import ARTIFACTS, TIMEOUT_MS, sign_in, with_password
from civicgrid.web.tests.test_cases_browser import _watch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: Where the phones are: grid C1 of 丙社区 (东街道), whose worker is 吴刚 (``east_worker``).
PHONE_AT = Geolocation(longitude=EAST_POINT[0], latitude=EAST_POINT[1])
CITIZEN_PHONE = "13987654321"
DESCRIPTION = "丙社区东门外人行道地砖大面积松动翘起，老人推车经过时差点摔倒"
RESULT = "已更换松动地砖 12 块，路面恢复平整"


def _picture(name: str, fmt: str, color: tuple[int, int, int]) -> FilePayload:
    """A small real photo made with Pillow: a pavement with a coloured patch."""
    image = Image.new("RGB", (640, 480), (200, 205, 210))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 280, 640, 480), fill=(120, 120, 125))
    draw.rectangle((220, 320, 420, 420), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    return FilePayload(name=name, mimeType=mime, buffer=buffer.getvalue())


@pytest.fixture
def phones(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Fresh phones (390×844, touch, Chinese, location allowed and known)."""
    opened: list[BrowserContext] = []

    def new() -> Page:
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            geolocation=PHONE_AT,
            permissions=["geolocation"],
        )
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context.new_page()

    yield new
    for context in opened:
        context.close()


class Story:
    """Numbered screenshots, and what every page did wrong (script errors, requests
    that left the live server)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.n = 0
        self.watched: list[tuple[list[str], list[str]]] = []

    def watch(self, page: Page) -> Page:
        self.watched.append(_watch(page, self.base))
        return page

    def shot(self, page: Page, name: str) -> None:
        self.n += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)
        page.screenshot(path=str(ARTIFACTS / f"story-{self.n:02d}-{name}.png"), full_page=True)

    def problems(self) -> list[str]:
        return [p for errors, outside in self.watched for p in errors + outside]


def _timeline(page: Page) -> list[str]:
    """The staff case page's timeline, as its events' actions in order."""
    classes = page.locator(".timeline li.event").evaluate_all(
        "items => items.map(li => [...li.classList].find(c => c.startsWith('event-')))"
    )
    return [c.removeprefix("event-") for c in classes]


def test_one_problem_from_the_citizen_through_every_desk_back_to_the_citizen(
    desk: Callable[[], BrowserContext],
    phones: Callable[[], Page],
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    tree: Tree,
    category: Category,
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    east_worker: User,
    supervisor: User,
    city_unit: HandlingUnit,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    # This district's supervisors close verified cases themselves.
    settings.CIVICGRID_CLOSE_ON_VERIFY = False
    for user in (call_taker, dispatcher, unit_handler, east_worker, supervisor):
        with_password(user)
    base = live_server.url
    story = Story(base)

    # -- 1. the citizen reports on the portal, no account ------------------------------------
    citizen = story.watch(phones())
    citizen.goto(f"{base}/report/")
    expect(citizen.locator("h1")).to_have_text("反映城市管理问题")
    citizen.select_option("#id_major", label="街面秩序（测试）")
    expect(citizen.locator("#id_category option", has_text="占道经营（测试）")).to_have_count(1)
    citizen.select_option("#id_category", label="占道经营（测试）")
    citizen.fill("#id_description", DESCRIPTION)
    expect(citizen.locator("#report-map[data-ready]")).to_have_count(1)
    citizen.click("#use-location")
    expect(citizen.locator("#id_lon")).to_have_value(f"{EAST_POINT[0]:.6f}")
    expect(citizen.locator("#id_lat")).to_have_value(f"{EAST_POINT[1]:.6f}")
    expect(citizen.locator("#pin-status")).to_contain_text("已标记位置")
    citizen.set_input_files("#id_photos", files=[_picture("地砖.png", "PNG", (150, 90, 40))])
    expect(citizen.locator("#photo-previews img")).to_have_count(1)
    expect(citizen.locator("#photo-count")).to_have_text("已选择 1 张照片")
    citizen.fill("#id_name", "李先生")
    citizen.fill("#id_phone", CITIZEN_PHONE)
    story.shot(citizen, "portal-report")
    citizen.click("#submit-report")

    expect(citizen).to_have_url(f"{base}/report/done/")
    expect(citizen.locator("h1")).to_have_text("您的反映已提交")
    code = citizen.locator("#tracking-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{10}", code)
    story.shot(citizen, "portal-done")
    case = Case.objects.get(tracking_code=code)
    assert (case.channel, case.status, case.created_by) == (Channel.WEB, Status.NEW, None)
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.attachments.filter(kind=AttachmentKind.BEFORE).count() == 1

    # -- 2. the call-taker finds it among the cases to accept, and accepts it -----------------
    office = story.watch(desk().new_page())
    sign_in(office, base, "liufang", "/")
    expect(office.locator("#task-badge .count")).to_have_text("1")
    office.locator("#task-badge").click()
    office.locator(".task-tabs a.task-accept").click()
    expect(office).to_have_url(f"{base}/notifications/accept/")
    row = office.locator(f"#case-table tbody tr[data-case='{case.pk}']")
    expect(row).to_contain_text(case.number)
    expect(row).to_contain_text("待受理")
    story.shot(office, "call-taker-tasks")
    row.get_by_role("link", name=case.number).click()
    expect(office).to_have_url(f"{base}/cases/{case.pk}/")
    expect(office.locator(".case-head h1 .status")).to_have_text("待受理")
    expect(office.locator(".case-facts")).to_contain_text("市民网页")
    expect(office.locator(".photo-before img")).to_have_count(1)
    expect(office.locator("#action-accept")).to_have_attribute("open", "")  # the main action
    office.locator("#action-accept input[name=note]").fill("市民网上反映，信息完整")
    story.shot(office, "call-taker-case")
    office.locator("#action-accept button[type=submit]").click()
    expect(office.locator(".case-head h1 .status")).to_have_text("待派遣")
    expect(office.locator(".case-page .alert.success")).to_contain_text("受理")
    assert _timeline(office) == [Action.CREATE, Action.ACCEPT]
    expect(office.locator(".timeline li.event-accept")).to_contain_text("市民网上反映，信息完整")
    story.shot(office, "call-taker-accepted")

    # -- 3. the dispatcher sends it from the queue to the suggested unit ------------------------
    office = story.watch(desk().new_page())
    sign_in(office, base, "wangmin", "/")
    office.locator(".mainnav").get_by_role("link", name="派遣队列").click()
    expect(office).to_have_url(f"{base}/dispatch/")
    row = office.locator(f"#case-table tbody tr[data-case='{case.pk}']")
    expect(row).to_contain_text("待派遣")
    expect(row.locator("select[name=unit] option:checked")).to_have_text(
        "城管执法局东街道中队（建议）"
    )
    story.shot(office, "dispatch-queue")
    row.locator("button.dispatch-button").click()
    expect(office.locator(f"#case-table tbody tr[data-case='{case.pk}']")).to_have_count(0)
    expect(office.get_by_text(f"案件 {case.number} 已派遣至 城管执法局东街道中队")).to_be_visible()
    story.shot(office, "dispatched")
    office.locator(".mainnav").get_by_role("link", name="案件").click()
    office.locator("#case-table").get_by_role("link", name=case.number).click()
    expect(office).to_have_url(f"{base}/cases/{case.pk}/")
    expect(office.locator(".case-head h1 .status")).to_have_text("待签收")
    expect(office.locator(".case-facts")).to_contain_text("城管执法局东街道中队")
    assert _timeline(office) == [Action.CREATE, Action.ACCEPT, Action.DISPATCH]

    # -- 4. the unit acknowledges in its inbox, then reports back on the case page ------------
    office = story.watch(desk().new_page())
    sign_in(office, base, "chenjing", "/")
    office.locator(".mainnav").get_by_role("link", name="单位待办").click()
    expect(office).to_have_url(f"{base}/inbox/")
    row = office.locator(f"#case-table tbody tr[data-case='{case.pk}']")
    expect(row).to_contain_text("待签收")
    story.shot(office, "unit-inbox")
    row.get_by_role("button", name="签收").click()
    expect(row.locator(".row-notice")).to_contain_text("签收")
    row.get_by_role("link", name="处置反馈").click()
    expect(office).to_have_url(f"{base}/cases/{case.pk}/#action-handle")
    expect(office.locator(".case-head h1 .status")).to_have_text("处置中")
    handle = office.locator("#action-handle")
    expect(handle).to_have_attribute("open", "")
    handle.locator("textarea[name=result]").fill(RESULT)
    handle.locator("input[type=file][name=photos]").set_input_files(
        [_picture("处置后.jpg", "JPEG", (95, 100, 105))]
    )
    story.shot(office, "unit-report-back")
    handle.locator("button[type=submit]").click()
    expect(office.locator(".case-head h1 .status")).to_have_text("待核查")
    expect(office.locator(".case-main")).to_contain_text(RESULT)
    expect(office.locator(".photo-after img")).to_have_count(1)
    assert _timeline(office) == [
        Action.CREATE,
        Action.ACCEPT,
        Action.DISPATCH,
        Action.ACKNOWLEDGE,
        Action.HANDLE,
    ]
    expect(office.locator(".timeline li.event-handle")).to_contain_text("附照片 1 张")
    story.shot(office, "unit-handled")

    # -- 5. the grid worker verifies on site, on a phone, with a photo -------------------------
    worker = story.watch(phones())
    sign_in(worker, base, "wugang", "/")
    worker.locator(".mainnav").get_by_role("link", name="网格员").click()
    expect(worker).to_have_url(f"{base}/field/")
    task = worker.locator(f".field-task[data-case='{case.pk}']")
    expect(task).to_contain_text("占道经营（测试）")
    expect(worker.locator(".my-grid .field-counts")).to_contain_text("1 待核查")
    story.shot(worker, "field-home")
    task.click()
    expect(worker).to_have_url(f"{base}/field/verify/{case.pk}/")
    for side in ("before", "after"):
        worker.wait_for_function(
            f"() => {{ const i = document.querySelector('.compare-{side} img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
    expect(worker.locator(".unit-result")).to_contain_text(RESULT)
    worker.locator("label.verdict-pass").click()
    worker.fill("#id_note", "现场查看，地砖已全部更换")
    worker.set_input_files("#id_photos", [_picture("核查.png", "PNG", (60, 160, 80))])
    story.shot(worker, "field-verify")
    worker.locator("#verify-form button[type=submit]").click()
    expect(worker).to_have_url(f"{base}/field/")
    expect(worker.locator(".messages .success")).to_contain_text(f"核查通过：{case.number}")
    expect(worker.locator(f".field-task[data-case='{case.pk}']")).to_have_count(0)
    expect(worker.locator(".my-grid .field-counts")).to_contain_text("0 待核查")
    story.shot(worker, "field-verified")
    case.refresh_from_db()
    assert case.status == Status.HANDLED  # verified, waiting for the supervisor
    assert case.attachments.filter(kind=AttachmentKind.VERIFICATION).count() == 1

    # -- 6. the supervisor closes it from the desk ------------------------------------------------
    office = story.watch(desk().new_page())
    sign_in(office, base, "majun", "/")
    office.locator(".mainnav").get_by_role("link", name="值班长工作台").click()
    expect(office).to_have_url(f"{base}/desk/")
    closing = office.locator(f"#row-desk-closing-{case.pk}")
    expect(office.locator("#closing")).to_contain_text(case.number)
    story.shot(office, "supervisor-desk")
    closing.get_by_role("button", name="结案").click()
    expect(closing.locator(".row-notice")).to_contain_text("结案")
    office.locator("#closing").get_by_role("link", name=case.number).click()
    expect(office).to_have_url(f"{base}/cases/{case.pk}/")
    expect(office.locator(".case-head h1 .status")).to_have_text("已结案")
    assert _timeline(office) == [
        Action.CREATE,
        Action.ACCEPT,
        Action.DISPATCH,
        Action.ACKNOWLEDGE,
        Action.HANDLE,
        Action.VERIFY_PASS,
        Action.CLOSE,
    ]
    expect(office.locator(".photo-verification img")).to_have_count(1)
    story.shot(office, "closed")

    # -- 7. the citizen follows it by code and phone, and rates it ----------------------------
    citizen = story.watch(phones())  # another phone: no proof kept from the report
    citizen.goto(f"{base}/track/{code}/")
    expect(citizen).to_have_url(f"{base}/track/?code={code}")
    expect(citizen.locator("#id_code")).to_have_value(code)
    citizen.fill("#id_phone", CITIZEN_PHONE)
    story.shot(citizen, "portal-track")
    citizen.click("#track-form button[type=submit]")
    expect(citizen).to_have_url(f"{base}/track/{code}/")
    expect(citizen.locator("h1")).to_have_text("已办结")
    expect(citizen.locator(".steps li.done")).to_have_count(5)
    expect(citizen.locator(".thumbs-before img")).to_have_count(1)
    expect(citizen.locator(".thumbs-after img")).to_have_count(1)
    timeline = citizen.locator("#timeline")
    for label in ("提交反映", "受理", "派遣", "签收", "处置反馈", "核查通过", "结案"):
        expect(timeline.locator(".tl-label", has_text=label).first).to_be_visible()
    expect(timeline).to_contain_text(RESULT)
    expect(citizen.locator("body")).not_to_contain_text("陈静")  # no staff names
    citizen.locator(".rate-4").click()
    citizen.fill("#id_comment", "修得不错，希望以后巡查再勤一些")
    story.shot(citizen, "portal-rate")
    citizen.click("#rate-form button[type=submit]")
    expect(citizen.locator("#rated")).to_contain_text("感谢您的评价！")
    expect(citizen.locator("#rated .badge")).to_have_text("满意")
    expect(citizen.locator("#rate")).to_contain_text("修得不错，希望以后巡查再勤一些")
    expect(citizen.locator("#timeline .tl-label").first).to_have_text("市民评价")
    expect(citizen.locator("#rate-form")).to_have_count(0)
    story.shot(citizen, "portal-rated")

    # The staff see the rating on the case page.
    office.reload()
    expect(office.locator(".counters")).to_contain_text("满意度 4/5")
    expect(office.locator(".timeline li.event-follow_up")).to_contain_text(
        "修得不错，希望以后巡查再勤一些"
    )
    story.shot(office, "staff-rated")
    case.refresh_from_db()
    assert (case.status, case.satisfaction) == (Status.CLOSED, 4)

    assert story.problems() == []

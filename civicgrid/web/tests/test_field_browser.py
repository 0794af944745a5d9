"""The grid worker on a phone (390×844) in a real Chromium against a live server, and
the unit's inbox, the supervisor's desk and the overview on an office screen.

The worker opens /field/, verifies a handled case with an on-site photo from the file
chooser, then reports a problem in three taps (a tile, a photo, send) with the
phone's location. Screenshots go to ``CIVICGRID_ARTIFACTS`` (default ``var/artifacts/``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Geolocation,
    Page,
    expect,
)
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import AttachmentKind, Case, Channel, Status
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.web.tests.conftest import ARTIFACTS, TIMEOUT_MS, sign_in, with_password
from civicgrid.web.tests.test_cases_browser import _watch
from civicgrid.web.tests.test_role_pages import ensure_field_categories

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: Where the phone says it is: grid C1 of 丙社区 (WGS-84).
PHONE_AT = Geolocation(longitude=103.8262, latitude=35.9761)


def _jpeg(name: str, color: tuple[int, int, int]) -> FilePayload:
    image = Image.new("RGB", (800, 600), (222, 232, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 360, 700, 470), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return FilePayload(name=name, mimeType="image/jpeg", buffer=buffer.getvalue())


def _upload(name: str, color: tuple[int, int, int]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, _jpeg(name, color)["buffer"], content_type="image/jpeg")


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _phone(browser: Browser, opened: list[BrowserContext]) -> Page:
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


def _office(browser: Browser, opened: list[BrowserContext]) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    opened.append(context)
    return context.new_page()


def _shot(page: Page, name: str, *, full: bool = False) -> None:
    """The screen as the user sees it (and, with ``full``, the whole page too)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / f"roles-{name}.png"))
    if full:
        page.screenshot(path=str(ARTIFACTS / f"roles-{name}-full.png"), full_page=True)


def test_a_grid_worker_verifies_with_a_photo_and_reports_in_three_taps(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    supervisor: User,
    leader: User,
    east_worker: User,
    city_unit: HandlingUnit,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    ensure_field_categories()
    for user in (unit_handler, supervisor, leader, east_worker):
        with_password(user)
    # A case with a before-photo, handled by the unit with an after-photo.
    case = new_case(description="桥下环岛暴露垃圾，约 2 平方米", address="滨河路桥下")
    services.attach_photos(
        case=case,
        actor=call_taker,
        uploads=[_upload("before.jpg", (120, 90, 40))],
        kind=AttachmentKind.BEFORE,
    )
    case = services.accept_case(case=case, actor=call_taker)
    case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
    case = services.acknowledge_case(case=case, actor=unit_handler)
    case = services.handle_case(
        case=case,
        actor=unit_handler,
        result="垃圾已清运，地面冲洗干净",
        photos=[_upload("after.jpg", (90, 96, 104))],
    )
    base = live_server.url

    # -- /field/: my grid and the verification task ---------------------------------------
    page = _phone(browser, contexts)
    errors, outside = _watch(page, base)
    sign_in(page, base, "wugang", "/field/")
    expect(page.locator(".my-grid")).to_contain_text("丙社区第1网格")
    task = page.locator(f".field-task[data-case='{case.pk}']")
    expect(task).to_contain_text("占道经营")
    _shot(page, "field-home")
    task.click()

    # -- the before and after photos side by side; pass with an on-site photo -------------
    expect(page).to_have_url(f"{base}/field/verify/{case.pk}/")
    for side in ("before", "after"):
        page.wait_for_function(
            f"() => {{ const i = document.querySelector('.compare-{side} img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
    expect(page.locator(".unit-result")).to_contain_text("垃圾已清运")
    page.locator("label.verdict-pass").click()
    page.fill("#id_note", "现场已清理干净")
    page.set_input_files("#id_photos", [_jpeg("site.jpg", (60, 160, 80))])
    _shot(page, "field-verify", full=True)
    page.locator("#verify-form button[type=submit]").click()
    expect(page).to_have_url(f"{base}/field/")
    expect(page.locator(".messages .success")).to_contain_text("核查通过")
    expect(page.locator(f".field-task[data-case='{case.pk}']")).to_have_count(0)
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    assert case.attachments.filter(kind=AttachmentKind.VERIFICATION).count() == 1

    # -- a problem in three taps: a tile, a photo, send -------------------------------------
    page.locator(".field-report-button").click()
    expect(page).to_have_url(f"{base}/field/report/")
    expect(page.locator("#where")).to_have_class(re.compile(r"\bfound\b"))  # the phone's fix
    page.locator(".cat-tile", has_text="暴露垃圾").click()  # tap 1
    with page.expect_file_chooser() as chooser:
        page.locator(".photo-button").click()  # tap 2: the camera (here: the file chooser)
    chooser.value.set_files([_jpeg("rubbish.jpg", (150, 110, 60))])
    expect(page.locator(".photo-button")).to_have_class(re.compile(r"\bdone\b"))
    _shot(page, "field-report")
    page.locator("button.send").click()  # tap 3
    expect(page).to_have_url(f"{base}/field/")
    expect(page.locator(".messages .success")).to_contain_text("已上报并立案")
    reported = Case.objects.get(channel=Channel.GRID_WORKER)
    assert reported.status == Status.FILED
    assert reported.category.name == "暴露垃圾"
    assert reported.lon == pytest.approx(PHONE_AT["longitude"], abs=1e-6)
    assert reported.lat == pytest.approx(PHONE_AT["latitude"], abs=1e-6)
    assert reported.attachments.filter(kind=AttachmentKind.BEFORE).count() == 1
    _shot(page, "field-done")

    # -- the office pages at 1366×768 --------------------------------------------------------
    west = new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西街道小区门口垃圾满溢")
    services.accept_case(case=west, actor=call_taker)
    for i in range(3):
        c = services.accept_case(case=new_case(description=f"人行道护栏破损 {i}"), actor=call_taker)
        c = services.dispatch_case(case=c, actor=dispatcher, unit=city_unit)
        if i:
            c = services.acknowledge_case(case=c, actor=unit_handler)
        if i == 2:
            services.request_extension(
                case=c, actor=unit_handler, reason="需要采购护栏配件", extra_amount=Decimal(2)
            )
    voided = services.accept_case(case=new_case(description="重复来电"), actor=call_taker)
    services.request_void(case=voided, actor=call_taker, reason="与上一件重复登记")
    late = services.dispatch_case(
        case=services.accept_case(case=new_case(description="井盖缺失"), actor=call_taker),
        actor=dispatcher,
        unit=city_unit,
    )
    late.deadlines.filter(finished_at__isnull=True).update(
        due_at=timezone.now() - timedelta(minutes=5)
    )
    Case.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=5))
    services.mark_overdue(now=timezone.now())
    # Verified, waiting for the supervisor to close (auto-close off from here on).
    settings.CIVICGRID_CLOSE_ON_VERIFY = False
    to_close = services.accept_case(case=new_case(description="树枝遮挡路灯"), actor=call_taker)
    to_close = services.dispatch_case(case=to_close, actor=dispatcher, unit=city_unit)
    to_close = services.acknowledge_case(case=to_close, actor=unit_handler)
    to_close = services.handle_case(case=to_close, actor=unit_handler, result="已修剪树枝")
    services.verify_case(case=to_close, actor=east_worker, passed=True, note="路灯已无遮挡")

    office = _office(browser, contexts)
    office_errors, office_outside = _watch(office, base)
    sign_in(office, base, "chenjing", "/inbox/")
    expect(office.locator("#case-table tbody tr")).to_have_count(4)
    office.locator(".row-form summary").first.click()
    _shot(office, "inbox", full=True)
    ack = office.locator("#case-table tbody tr .row-actions button", has_text="签收").first
    ack.click()
    expect(office.locator(".row-notice").first).to_contain_text("已完成：签收")

    desk = _office(browser, contexts)
    desk_errors, desk_outside = _watch(desk, base)
    sign_in(desk, base, "majun", "/desk/")
    expect(desk.locator("#approvals tbody tr")).to_have_count(2)
    expect(desk.locator("#breached tbody tr")).to_have_count(1)
    _shot(desk, "desk", full=True)
    row = desk.locator("#approvals tr.approval-extension")
    row.locator("button[type=submit]").click()
    expect(row.locator(".row-notice")).to_contain_text("已完成：审批延期")
    closing = desk.locator(f"#row-desk-closing-{to_close.pk}")
    closing.locator("button", has_text="结案").click()
    expect(closing.locator(".row-notice")).to_contain_text("已完成：结案")
    assert Case.objects.get(pk=to_close.pk).status == Status.CLOSED

    overview = _office(browser, contexts)
    overview_errors, overview_outside = _watch(overview, base)
    sign_in(overview, base, "leader", "/overview/")
    expect(overview.locator(".overview-map path.case-point").first).to_be_visible()
    expect(overview.locator(".overview-map path.overview-area")).to_have_count(1)
    expect(overview.locator(".overview-map path.overview-part")).to_have_count(2)  # 2 streets
    _shot(overview, "overview", full=True)
    overview.locator(".filter-status label.chip", has_text="待派遣").click()
    # The west case, the one waiting for a void, and the worker's report.
    expect(overview.locator("[data-count=total]")).to_have_text("3")
    expect(overview.locator(".overview-map path.case-point")).to_have_count(3)
    expect(overview.locator("#case-table tbody tr")).to_have_count(3)

    assert errors + office_errors + desk_errors + overview_errors == []
    assert outside + office_outside + desk_outside + overview_outside == []

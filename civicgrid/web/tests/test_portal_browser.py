"""The citizen portal in a real Chromium at a phone's size, against a live server.

A citizen reports a problem with a photo and a map pin (after trying the phone's
location and a point outside the district), is refused once for a bad phone
number and keeps what was typed, gets the tracking code, follows the case with
code and phone, and rates it once it is closed. Screenshots of every page go to
``CIVICGRID_ARTIFACTS`` (default ``var/artifacts/``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from PIL import Image, ImageDraw
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Geolocation,
    Page,
    ViewportSize,
    expect,
)
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Action, AttachmentKind, Case, Category, Channel, Status
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.conftest import ARTIFACTS, TIMEOUT_MS

pytestmark = [
    pytest.mark.browser,
    # With ``available_apps`` the database is flushed afterwards without re-creating
    # the content types, so that a later test with serialized rollback in the same
    # process (test_concurrency) can restore them. ``serialized_rollback`` would say
    # so too, but under Playwright's event loop the connection does not see the
    # serialized contents and the flush re-creates them.
    pytest.mark.django_db(transaction=True, available_apps=list(django_settings.INSTALLED_APPS)),
]

PHONE_VIEWPORT = ViewportSize(width=390, height=844)
#: Where the phone says it is: grid C1 (丙社区, 东街道), in WGS-84.
PHONE_AT = Geolocation(longitude=103.825, latitude=35.975)


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A phone: 390×844, touch, Chinese, location allowed and known."""
    context = browser.new_context(
        viewport=PHONE_VIEWPORT,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation=PHONE_AT,
        permissions=["geolocation"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def street_photo() -> bytes:
    """A small JPEG that looks like something: a grey road with a broken cover."""
    image = Image.new("RGB", (640, 480), (150, 150, 150))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, 640, 480), fill=(90, 90, 95))
    draw.ellipse((250, 330, 390, 430), fill=(40, 40, 40), outline=(200, 60, 20), width=6)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=full_page)


def wait_until_still(page: Page) -> None:
    page.wait_for_function(
        "() => !document.getElementById('report-map').hasAttribute('data-moving')"
    )


def test_a_citizen_reports_on_a_phone_tracks_the_case_and_rates_it(
    phone: BrowserContext,
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    tree: Tree,
    category: Category,
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    supervisor: User,
    city_unit: HandlingUnit,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    base = live_server.url
    page = phone.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{base}/report/")
    expect(page.locator("h1")).to_have_text("反映城市管理问题")
    expect(page.locator(".portal-nav a.active")).to_have_text("我要反映")

    # 1. The category: type a word, pick the hit; 大类 and 小类 are filled in.
    page.fill("#category-q", "占道")
    hit = page.locator(".cat-hit").filter(has_text="占道经营（测试）")
    expect(hit).to_have_count(1)
    hit.click()
    expect(page.locator("#id_major")).to_have_value(str(category.parent_id))
    expect(page.locator("#id_category")).to_have_value(str(category.pk))
    expect(page.locator(".cat-hit")).to_have_count(0)

    # 2. What is wrong.
    page.fill("#id_description", "丙社区东门外人行道上有人占道摆摊，行人只能走机动车道")

    # 3. Where: the district outline is drawn (no basemap configured); the phone's
    # location, then a tap outside the district, then a tap inside.
    expect(page.locator("#report-map[data-ready]")).to_have_count(1)
    expect(page.locator("path.portal-outline-0")).to_have_count(1)
    expect(page.locator("path.portal-outline-1")).to_have_count(2)
    expect(page.locator(".outline-label")).to_have_text(["西街道", "东街道"])
    assert page.locator("#report-map .leaflet-tile-pane img").count() == 0
    page.locator("#report-map").scroll_into_view_if_needed()
    wait_until_still(page)
    district = page.locator("path.portal-outline-0").bounding_box()
    frame = page.locator("#report-map").bounding_box()
    assert district is not None
    assert frame is not None
    assert district["y"] - frame["y"] > 20  # room above the district to tap outside
    page.touchscreen.tap(frame["x"] + frame["width"] / 2, frame["y"] + 8)
    status = page.locator("#pin-status")
    expect(status).to_have_text("该位置不在本区管辖范围内，请在地图上的辖区范围内选择。")
    expect(status).to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator(".portal-pin.outside")).to_have_count(1)

    page.click("#use-location")
    expect(page.locator("#id_lon")).to_have_value("103.825000")
    expect(page.locator("#id_lat")).to_have_value("35.975000")
    expect(status).to_have_text("已标记位置：经度 103.825000，纬度 35.975000")
    wait_until_still(page)
    # Without a basemap the map does not zoom into a blank sheet: the district stays whole.
    after = page.locator("path.portal-outline-0").bounding_box()
    assert after is not None
    assert abs(after["width"] - district["width"]) < 1
    page.click("#clear-pin")
    expect(page.locator("#id_lon")).to_have_value("")
    expect(page.locator(".portal-pin")).to_have_count(0)

    page.locator("#report-map").scroll_into_view_if_needed()
    east = page.locator("path.portal-outline-1").nth(1).bounding_box()
    assert east is not None
    # A third of the way in from the west edge, near the south: grid C1.
    page.touchscreen.tap(east["x"] + east["width"] * 0.3, east["y"] + east["height"] * 0.75)
    expect(status).to_contain_text("已标记位置：经度 103.8")
    expect(page.locator(".portal-pin:not(.outside)")).to_have_count(1)
    lon = float(page.input_value("#id_lon"))
    lat = float(page.input_value("#id_lat"))
    assert 103.80 < lon < 103.85
    assert 35.95 < lat < 36.00

    # 4. A photo, as the phone's camera would give it.
    photo = FilePayload(name="现场.jpg", mimeType="image/jpeg", buffer=street_photo())
    page.set_input_files("#id_photos", files=[photo])
    expect(page.locator("#photo-previews img")).to_have_count(1)
    expect(page.locator("#photo-count")).to_have_text("已选择 1 张照片")

    # 5. Who: a wrong number first.
    page.fill("#id_name", "王女士")
    page.fill("#id_phone", "12345")
    shot(page, "1-report-form")
    page.click("#submit-report")
    expect(page.locator("#phone-errors")).to_contain_text("请填写正确的手机号码")
    expect(page.locator("#id_phone")).to_have_value("12345")
    expect(page.locator("#id_description")).to_have_value(
        "丙社区东门外人行道上有人占道摆摊，行人只能走机动车道"
    )
    expect(page.locator("#id_major")).to_have_value(str(category.parent_id))
    expect(page.locator("#id_category")).to_have_value(str(category.pk))
    expect(page.locator("#id_lon")).to_have_value(f"{lon:.6f}")
    expect(page.locator(".portal-pin")).to_have_count(1)  # the pin is back on the map
    expect(page.locator("#id_name")).to_have_value("王女士")
    expect(page.get_by_text("浏览器不会保留已选的照片，请重新选择")).to_be_visible()
    page.locator("#phone-errors").scroll_into_view_if_needed()
    shot(page, "2-report-refused", full_page=False)
    assert not Case.objects.exists()

    page.fill("#id_phone", "139 1234 5678")
    page.set_input_files("#id_photos", files=[photo])
    page.click("#submit-report")

    # The code, big, and how to follow the case.
    expect(page).to_have_url(f"{base}/report/done/")
    code = page.locator("#tracking-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{10}", code)
    expect(page.locator("h1")).to_have_text("您的反映已提交")
    expect(page.get_by_text("如何查询办理进度")).to_be_visible()
    shot(page, "3-report-done")

    case = Case.objects.get(tracking_code=code)
    assert case.channel == Channel.WEB
    assert case.created_by is None
    assert case.requester_phone == "13912345678"
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.attachments.filter(kind=AttachmentKind.BEFORE).count() == 1

    # Track it, from a fresh start: the lookup form, code typed in lower case.
    page.click(".portal-nav >> text=进度查询")
    expect(page).to_have_url(f"{base}/track/")
    page.fill("#id_code", code.lower())
    page.fill("#id_phone", "13912345678")
    page.click("#track-form button[type=submit]")
    expect(page).to_have_url(f"{base}/track/{code}/")
    expect(page.locator("h1")).to_have_text("已提交，等待受理")
    expect(page.locator("#case-category")).to_have_text("街面秩序（测试） › 占道经营（测试）")
    expect(page.locator(".steps li.current")).to_have_text("提交")
    thumb = page.locator(".thumbs-before img")
    expect(thumb).to_have_count(1)
    page.wait_for_function(
        "() => { const i = document.querySelector('.thumbs-before img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("#timeline li")).to_have_count(1)
    shot(page, "4-track")

    # The case goes its way inside (with an internal send-back), and is closed.
    case = services.accept_case(case=case, actor=call_taker)
    case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
    case = services.send_back_case(case=case, actor=unit_handler, reason="内部：先派错了")
    case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
    case = services.acknowledge_case(case=case, actor=unit_handler)
    case = services.handle_case(case=case, actor=unit_handler, result="已劝离摊贩，恢复人行道通行")
    services.attach_photos(
        case=case,
        actor=unit_handler,
        uploads=[street_photo()],
        kind=AttachmentKind.AFTER,
        event=case.events.get(action=Action.HANDLE),
    )
    case = services.verify_case(case=case, actor=supervisor, passed=True)
    assert case.status == Status.CLOSED

    page.reload()
    expect(page.locator("h1")).to_have_text("已办结")
    expect(page.locator(".steps li.done")).to_have_count(5)
    expect(page.locator(".thumbs-after img")).to_have_count(1)
    expect(page.locator("#timeline")).to_contain_text("已劝离摊贩，恢复人行道通行")
    expect(page.locator("body")).not_to_contain_text("内部")
    expect(page.locator("body")).not_to_contain_text("陈静")
    page.locator(".rate-5").click()
    page.fill("#id_comment", "处理很快，谢谢！")
    page.locator("#rate-form").scroll_into_view_if_needed()
    shot(page, "5-rate", full_page=False)
    page.click("#rate-form button[type=submit]")
    expect(page.locator("#rated")).to_contain_text("感谢您的评价！")
    expect(page.locator("#rated .badge")).to_have_text("非常满意")
    expect(page.locator("#rate-form")).to_have_count(0)
    shot(page, "6-rated")
    case.refresh_from_db()
    assert case.satisfaction == 5

    assert errors == []
    # Nothing was fetched from anywhere but the live server (blob: are the photo previews).
    host = urlsplit(base).netloc
    fetched = [url for url in requested if urlsplit(url).scheme in ("http", "https")]
    assert fetched
    assert [url for url in fetched if urlsplit(url).netloc != host] == []

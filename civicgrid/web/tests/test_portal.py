"""The citizen portal through Django's test client: report → track → rate, every refusal,
the rate limits, and what the tracking page must never show.

The small district of civicgrid/grids/tests/fixtures.py; ``EAST_POINT`` is in grid C1
(丙社区, 东街道), served by 城管执法局东街道中队 (contact 周强).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from pytest_django import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import (
    Action,
    AttachmentKind,
    Case,
    CaseEvent,
    Category,
    CategoryKind,
    Channel,
    Status,
)
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
REPORT = "/report/"
TRACK = "/track/"


@pytest.fixture(autouse=True)
def _portal(settings: Settings, tmp_path: Path) -> Iterator[None]:
    settings.MEDIA_ROOT = tmp_path
    cache = caches[settings.CIVICGRID_PORTAL_CACHE]
    cache.clear()
    yield
    cache.clear()


def jpeg(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def photo(data: bytes | None = None, name: str = "现场.jpg", kind: str = "image/jpeg") -> Any:
    return SimpleUploadedFile(name, jpeg() if data is None else data, kind)


def report_data(category: Category, /, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "major": category.parent_id,
        "category": category.pk,
        "description": "小区东门外人行道井盖破损，已有行人绊倒",
        "lon": f"{EAST_POINT[0]:.6f}",
        "lat": f"{EAST_POINT[1]:.6f}",
        "address": "丙社区东门外",
        "name": "王女士",
        "phone": "139 1234 5678",
        "token": "form-token-0001",
        "website": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def page(response: Any) -> str:
    return html.unescape(response.content.decode())


def field_errors(response: Any, field: str) -> list[str]:
    """The messages shown next to ``field`` (its ``<ul id="FIELD-errors">``)."""
    found = re.search(
        rf'<ul class="errorlist field-errors" id="{field}-errors"[^>]*>(.*?)</ul>',
        page(response),
        re.S,
    )
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S) if found else []


def tracking_code(response: Any) -> str:
    found = re.search(
        r'<p class="tracking-code" id="tracking-code"[^>]*>([A-Z0-9]+)</p>', page(response)
    )
    assert found, page(response)
    return found.group(1)


def report(client: Client, category: Category, /, **overrides: Any) -> Any:
    return client.post(REPORT, report_data(category, **overrides))


def lookup(client: Client, code: str, phone: str = PHONE) -> Any:
    return client.post(TRACK, {"code": code, "phone": phone})


@pytest.fixture
def close(
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    east_worker: User,
    city_unit: HandlingUnit,
) -> Callable[[Case], Case]:
    """Take a new case at EAST_POINT to closed, with an after-photo, through the services."""

    def run(case: Case) -> Case:
        case = services.accept_case(case=case, actor=call_taker, note="已受理，转交责任单位")
        case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
        case = services.acknowledge_case(case=case, actor=unit_handler)
        case = services.handle_case(case=case, actor=unit_handler, result="已更换新井盖")
        event = case.events.get(action=Action.HANDLE)
        services.attach_photos(
            case=case,
            actor=unit_handler,
            uploads=[photo(jpeg(color=(40, 160, 90)))],
            kind=AttachmentKind.AFTER,
            event=event,
        )
        return services.verify_case(case=case, actor=east_worker, passed=True)

    return run


# -- the whole story -------------------------------------------------------------------------
def test_the_report_page_is_public_in_chinese_and_made_for_phones(
    client: Client, tree: Tree, category: Category
) -> None:
    response = client.get(REPORT)
    assert response.status_code == 200
    text = page(response)
    assert '<html lang="zh-hans">' in text
    assert "反映城市管理问题" in text
    assert 'name="viewport"' in text
    assert 'name="csrfmiddlewaretoken"' in text
    assert re.search(
        r'<input type="file" id="id_photos" name="photos" accept="image/\*" multiple', text
    )
    assert 'type="tel"' in text
    assert "街面秩序（测试）" in text  # the 大类 to pick from
    # A public page: no staff navigation, no sign-in needed.
    assert 'href="/"' not in text
    assert "退出" not in text
    assert "工作台" not in text


def test_a_citizen_reports_with_photos_tracks_the_case_and_rates_it_once(
    client: Client, tree: Tree, category: Category, close: Callable[[Case], Case]
) -> None:
    response = client.post(
        REPORT,
        {**report_data(category), "photos": [photo(), photo(jpeg(color=(10, 20, 200)), "2.jpg")]},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal-report-done")
    done = client.get(response["Location"])
    code = tracking_code(done)
    assert "如何查询办理进度" in page(done)

    case = Case.objects.get(tracking_code=code)
    assert case.channel == Channel.WEB
    assert case.created_by is None
    assert case.status == Status.NEW
    assert case.requester_phone == PHONE
    assert case.requester_name == "王女士"
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.address == "丙社区东门外"
    before = list(case.attachments.order_by("id"))
    assert [(p.kind, p.uploaded_by_id) for p in before] == [(AttachmentKind.BEFORE, None)] * 2

    # Another browser: the code (typed loosely) and the phone find it.
    citizen = Client()
    found = lookup(citizen, f"{code[:4].lower()} {code[4:]}", "+86 139-1234-5678")
    assert found.status_code == 302
    assert found["Location"] == reverse("portal-case", kwargs={"code": code})
    shown = citizen.get(found["Location"])
    assert shown.status_code == 200
    assert shown["Cache-Control"] == "private, no-store"
    text = page(shown)
    assert "已提交，等待受理" in text
    assert "街面秩序（测试） › 占道经营（测试）" in text
    assert "小区东门外人行道井盖破损" in text  # the citizen's own words
    assert "提交反映" in text
    thumbs = re.findall(r'<img src="(/track/[A-Z0-9]+/photos/\d+/thumb/)"', text)
    assert len(thumbs) == 2
    thumb = citizen.get(thumbs[0])
    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(thumb.streaming_content))).format == "JPEG"  # type: ignore[attr-defined]
    full = citizen.get(thumbs[0].removesuffix("thumb/"))
    assert full.status_code == 200
    assert 'id="rate-form"' not in text  # not before closure

    close(case)
    text = page(citizen.get(found["Location"]))
    assert "已办结" in text
    assert "已更换新井盖" in text  # the unit's result is public
    assert "已受理，转交责任单位" in text  # so is the note of the acceptance
    assert len(re.findall(r'<ul class="thumbs thumbs-after">', text)) == 1
    assert 'id="rate-form"' in text
    for label in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert f"<span>{label}</span>" in text

    rated = citizen.post(
        reverse("portal-rate", kwargs={"code": code}),
        {"satisfaction": "5", "comment": "处理很及时，谢谢！"},
    )
    assert rated.status_code == 302
    case.refresh_from_db()
    assert case.satisfaction == 5
    event = case.events.get(action=Action.FOLLOW_UP)
    assert (event.actor_id, event.is_public, event.reason) == (None, True, "处理很及时，谢谢！")
    text = page(citizen.get(rated["Location"]))
    assert "感谢您的评价！" in text
    assert "非常满意" in text
    assert "市民评价" in text
    assert 'id="rate-form"' not in text

    again = citizen.post(
        reverse("portal-rate", kwargs={"code": code}), {"satisfaction": "1", "comment": "再评一次"}
    )
    assert again.status_code == 400
    assert "您已评价过该案件，不能重复评价" in page(again)
    case.refresh_from_db()
    assert case.satisfaction == 5
    assert case.events.filter(action=Action.FOLLOW_UP).count() == 1


def test_the_done_page_shows_only_the_browsers_own_report(client: Client) -> None:
    response = client.get(reverse("portal-report-done"))
    assert response.status_code == 302
    assert response["Location"] == REPORT


def test_a_report_without_a_pin_but_with_an_address_waits_to_be_located(
    client: Client, tree: Tree, category: Category
) -> None:
    response = report(client, category, lon="", lat="", address="东街道丙社区 3 号楼下")
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.needs_location
    assert case.grid is None
    assert case.address == "东街道丙社区 3 号楼下"


def test_a_form_sent_twice_makes_one_case(client: Client, tree: Tree, category: Category) -> None:
    first = client.post(REPORT, {**report_data(category), "photos": [photo()]})
    second = client.post(REPORT, {**report_data(category), "photos": [photo()]})
    assert first.status_code == second.status_code == 302
    case = Case.objects.get()
    assert case.attachments.count() == 1
    assert tracking_code(client.get(second["Location"])) == case.tracking_code


def test_the_forms_keep_csrf_protection(tree: Tree, category: Category) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(REPORT, report_data(category)).status_code == 403
    assert strict.post(TRACK, {"code": "ABCDEFGHJK", "phone": PHONE}).status_code == 403
    assert not Case.objects.exists()


# -- every refusal, next to its field, keeping what was typed ----------------------------------
@pytest.fixture
def other_category(category: Category) -> Category:
    major = Category.objects.create(code="T09", name="市容环境（测试）", kind=CategoryKind.EVENT)
    return Category.objects.create(
        code="T0901", name="暴露垃圾（测试）", kind=CategoryKind.EVENT, parent=major
    )


REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no major", {"major": ""}, "major", "请选择问题大类"),
    ("no minor", {"category": ""}, "category", "请选择问题小类"),
    ("a major as minor", {"category": "MAJOR"}, "category", "请重新选择问题小类"),
    ("minor of another major", {"category": "OTHER"}, "category", "请在所选大类下选择小类"),
    ("no description", {"description": "   "}, "description", "请描述您发现的问题"),
    ("short description", {"description": "井盖"}, "description", "至少 5 个字"),
    ("long description", {"description": "坏" * 2001}, "description", "不能超过 2000 个字"),
    ("no place", {"lon": "", "lat": "", "address": ""}, "lon", "请在地图上标出问题位置"),
    (
        "outside",
        {"lon": str(OUTSIDE_POINT[0]), "lat": str(OUTSIDE_POINT[1])},
        "lon",
        "不在本区管辖范围内",
    ),
    ("half a point", {"lat": ""}, "lon", "位置无效"),
    ("not a number", {"lon": "东经103度"}, "lon", "位置无效"),
    ("long address", {"address": "路" * 301}, "address", "地址不能超过 300 个字"),
    ("no phone", {"phone": ""}, "phone", "请填写联系电话"),
    ("bad phone", {"phone": "12345"}, "phone", "请填写正确的手机号码"),
    ("long name", {"name": "名" * 51}, "name", "称呼不能超过 50 个字"),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [pytest.param(change, field, message, id=name) for name, change, field, message in REFUSALS],
)
def test_the_report_form_refuses_bad_input_next_to_the_field_keeping_what_was_typed(
    client: Client,
    tree: Tree,
    category: Category,
    other_category: Category,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    change = dict(change)
    if change.get("category") == "MAJOR":
        change["category"] = category.parent_id
    if change.get("category") == "OTHER":
        change["category"] = other_category.pk
    data = report_data(category, **change)
    response = client.post(REPORT, data)
    assert response.status_code == 400
    errors = field_errors(response, field)
    assert any(message in e for e in errors), (errors, page(response)[:3000])
    assert "提交未成功，请按标红的提示修改后重新提交。" in page(response)
    text = page(response)
    # What was typed is still there.
    for name in ("description", "address", "name", "phone"):
        value = data.get(name, "")
        if value and len(value) < 300:
            assert value in text, name
    if data.get("lon"):
        assert f'name="lon" value="{data["lon"]}"' in text
    if data.get("category") and field != "major":
        assert re.search(rf'<option value="{data["major"]}" selected>', text)
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        pytest.param(
            [photo(b"GIF89a not really", "猫.gif", "image/gif")],
            "不是有效的 JPEG、PNG 或 WebP 图片",
            id="not an image",
        ),
        pytest.param(
            [photo(b"%PDF-1.4", "说明.pdf", "application/pdf")],
            "不是有效的 JPEG、PNG 或 WebP 图片",
            id="a pdf",
        ),
        pytest.param(
            [photo(jpeg(size=(400, 400)) + b"\0" * 4000, "大.jpg")], "超过了", id="too big"
        ),
        pytest.param(
            [photo(), photo(), photo()], "一次最多上传 2 张照片，您选择了 3 张", id="too many"
        ),
        pytest.param([photo(b"", "空.jpg")], "所选的文件是空的", id="empty"),
    ],
)
def test_the_report_form_refuses_bad_photos_with_a_clear_message(
    client: Client,
    tree: Tree,
    category: Category,
    settings: Settings,
    photos: list[Any],
    message: str,
) -> None:
    settings.CIVICGRID_MAX_UPLOAD_BYTES = 4000
    settings.CIVICGRID_PORTAL_MAX_PHOTOS = 2
    response = client.post(REPORT, {**report_data(category), "photos": photos})
    assert response.status_code == 400
    errors = field_errors(response, "photos")
    assert any(message in e for e in errors), errors
    text = page(response)
    assert "小区东门外人行道井盖破损，已有行人绊倒" in text
    assert 'value="139 1234 5678"' in text
    assert not Case.objects.exists()


def test_a_bad_photo_is_named_and_the_others_must_be_chosen_again(
    client: Client, tree: Tree, category: Category
) -> None:
    response = client.post(
        REPORT,
        {**report_data(category, phone="110"), "photos": [photo(), photo(b"xx", "坏图.jpg")]},
    )
    assert response.status_code == 400
    assert any("坏图.jpg" in e for e in field_errors(response, "photos"))
    assert field_errors(response, "phone")
    # Only the refused photo is an error, and the page says the files must be chosen again
    # when they were fine but something else was wrong.
    fine = client.post(REPORT, {**report_data(category, phone="110"), "photos": [photo()]})
    assert field_errors(fine, "photos") == []
    assert "浏览器不会保留已选的照片，请重新选择" in page(fine)


def test_a_bot_filling_the_hidden_field_is_refused(
    client: Client, tree: Tree, category: Category
) -> None:
    response = report(client, category, website="http://spam.example")
    assert response.status_code == 400
    assert "提交失败，请刷新页面后重试" in page(response)
    assert not Case.objects.exists()


# -- tracking ----------------------------------------------------------------------------------
def test_a_wrong_code_and_a_wrong_phone_get_the_same_answer(
    client: Client, new_case: Callable[..., Case]
) -> None:
    case = new_case()
    code = case.tracking_code
    other_code = "".join("A" if ch != "A" else "B" for ch in code)
    wrong_phone = lookup(client, code, "13900000000")
    wrong_code = lookup(client, other_code, PHONE)
    message = "没有找到与该查询码和联系电话对应的反映，请核对后重新输入。"
    for response in (wrong_phone, wrong_code):
        assert response.status_code == 400
        assert message in page(response)
    strip = lambda r: re.sub(r'value="[^"]*"', "", page(r))  # noqa: E731 - the typed values aside
    assert strip(wrong_phone) == strip(wrong_code)
    assert "13900000000" in page(wrong_phone)  # what was typed stays
    assert client.get(reverse("portal-case", kwargs={"code": code})).status_code == 302


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"code": "", "phone": PHONE}, "code", "请输入查询码"),
        ({"code": "ABC", "phone": PHONE}, "code", "查询码由 10 位大写字母和数字组成"),
        ({"code": "ABCDEFGHJK", "phone": ""}, "phone", "请输入反映问题时留下的联系电话"),
        ({"code": "ABCDEFGHJK", "phone": "12"}, "phone", "请填写正确的手机号码"),
    ],
)
def test_the_lookup_form_refuses_bad_input_next_to_the_field(
    client: Client, data: dict[str, str], field: str, message: str
) -> None:
    response = client.post(TRACK, data)
    assert response.status_code == 400
    assert any(message in e for e in field_errors(response, field))
    for value in data.values():
        if value:
            assert f'value="{value}"' in page(response)


def test_the_case_page_asks_again_without_proof_or_after_a_while(
    client: Client, new_case: Callable[..., Case]
) -> None:
    case = new_case()
    url = reverse("portal-case", kwargs={"code": case.tracking_code})
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{TRACK}?code={case.tracking_code}"
    assert f'value="{case.tracking_code}"' in page(client.get(response["Location"]))
    assert lookup(client, case.tracking_code).status_code == 302
    assert client.get(url).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert client.get(url).status_code == 302


def test_the_tracking_page_shows_no_staff_units_requester_or_internal_notes(
    client: Client,
    new_case: Callable[..., Case],
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    supervisor: User,
    east_worker: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
    west_handler: User,
) -> None:
    """A hotline case driven through internal steps: only the public part shows."""
    case = new_case(
        requester_name="张建国", description="来电人张建国称桥下有人占道，内部编号 X-99"
    )
    # A public note naming the requester with a phone number: shown masked.
    case = services.accept_case(case=case, actor=call_taker, note="已受理，张建国 13912345678 回电")
    case = services.dispatch_case(case=case, actor=dispatcher, unit=west_unit)
    case = services.send_back_case(
        case=case, actor=west_handler, reason="内部：非我单位职责，找周强"
    )
    case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
    case = services.acknowledge_case(case=case, actor=unit_handler)
    services.request_extension(
        case=case, actor=unit_handler, reason="内部：摊主是区领导亲戚", extra_amount=Decimal(1)
    )
    case = services.decide_extension(case=case, actor=supervisor, approve=True, note="内部：同意")
    case = services.urge_case(case=case, actor=supervisor, reason="内部督办：马军批示")
    services.attach_photos(
        case=case, actor=unit_handler, uploads=[photo()], kind=AttachmentKind.OTHER
    )
    case = services.handle_case(case=case, actor=unit_handler, result="已劝离摊贩，恢复通行")
    case = services.verify_case(
        case=case, actor=east_worker, passed=False, note="内部：摊贩又回来了"
    )
    verification = services.attach_photos(
        case=case, actor=east_worker, uploads=[photo()], kind=AttachmentKind.VERIFICATION
    )[0]
    case = services.handle_case(case=case, actor=unit_handler, result="再次劝离，已设置隔离栏")
    case = services.verify_case(case=case, actor=east_worker, passed=True)
    assert case.status == Status.CLOSED

    assert lookup(client, case.tracking_code).status_code == 302
    text = page(client.get(reverse("portal-case", kwargs={"code": case.tracking_code})))
    assert "已办结" in text
    assert "已劝离摊贩，恢复通行" in text
    assert "再次劝离，已设置隔离栏" in text
    assert "已受理，*** *** 回电" in text
    forbidden = [
        "13912345678",  # masked in the public note
        "刘芳", "王敏", "陈静", "马军", "吴刚", "西街道经办人",  # staff
        "城管执法局东街道中队", "西街道办事处", "周强", "0931-0000000",  # units and their staff
        "张建国", PHONE, "139****5678",  # the requester
        "内部", "X-99", "来电人",  # internal notes, and the call-taker's description
        "回退", "已回退", "申请延期", "督办", "核查不通过", "备注",  # internal steps
    ]  # fmt: skip
    leaked = [word for word in forbidden if word in text]
    assert leaked == []
    # The verification photo and the "other" photo are not shown, nor served.
    assert "thumbs-before" not in text
    assert "thumbs-after" not in text
    url = reverse("portal-photo", kwargs={"code": case.tracking_code, "pk": verification.pk})
    assert client.get(url).status_code == 404


def test_photos_are_served_only_to_a_browser_that_proved_code_and_phone(
    client: Client, tree: Tree, category: Category
) -> None:
    assert client.post(REPORT, {**report_data(category), "photos": [photo()]}).status_code == 302
    mine = Case.objects.get()
    attachment = mine.attachments.get()
    other, _ = services.report_by_citizen(
        data=services.Intake(
            channel=Channel.WEB,
            category=category,
            description="另一处问题",
            address="别处",
            requester_phone="13800000000",
        ),
        photos=[photo()],
    )
    for_mine = reverse(
        "portal-photo-thumb", kwargs={"code": mine.tracking_code, "pk": attachment.pk}
    )
    assert client.get(for_mine).status_code == 200  # the reporting browser
    assert Client().get(for_mine).status_code == 404  # anyone else
    theirs = reverse(
        "portal-photo", kwargs={"code": mine.tracking_code, "pk": other.attachments.get().pk}
    )
    assert client.get(theirs).status_code == 404
    not_granted = reverse(
        "portal-photo", kwargs={"code": other.tracking_code, "pk": other.attachments.get().pk}
    )
    assert client.get(not_granted).status_code == 404


# -- rating ------------------------------------------------------------------------------------
def test_the_rating_form_refuses_bad_input_and_an_open_case(
    client: Client, new_case: Callable[..., Case], close: Callable[[Case], Case]
) -> None:
    open_case = new_case()
    lookup(client, open_case.tracking_code)
    refused = client.post(
        reverse("portal-rate", kwargs={"code": open_case.tracking_code}), {"satisfaction": "5"}
    )
    assert refused.status_code == 400
    assert "案件办结后才能评价" in page(refused)

    case = close(new_case(description="另一处占道经营"))
    lookup(client, case.tracking_code)
    url = reverse("portal-rate", kwargs={"code": case.tracking_code})
    missing = client.post(url, {"comment": "还行吧"})
    assert missing.status_code == 400
    assert any("请选择您对办理结果的满意程度" in e for e in field_errors(missing, "satisfaction"))
    assert "还行吧" in page(missing)
    wrong = client.post(url, {"satisfaction": "9"})
    assert field_errors(wrong, "satisfaction")
    long = client.post(url, {"satisfaction": "3", "comment": "长" * 501})
    assert any("不能超过 500 个字" in e for e in field_errors(long, "comment"))
    assert 'value="3" required checked' in page(long)
    case.refresh_from_db()
    assert case.satisfaction is None
    # Without the proof, the form goes back to the lookup.
    assert Client().post(url, {"satisfaction": "5"}).status_code == 302
    assert not CaseEvent.objects.filter(action=Action.FOLLOW_UP).exists()


# -- rate limits -------------------------------------------------------------------------------
def test_reports_are_limited_per_client_address(
    client: Client, tree: Tree, category: Category, settings: Settings
) -> None:
    settings.CIVICGRID_PORTAL_REPORTS_PER_ADDRESS = 2
    for n in range(2):
        assert (
            report(client, category, phone=f"1390000000{n}", token=f"token-{n:08d}").status_code
            == 302
        )
    limited = report(client, category, phone="13900000009", token="token-99999999")
    assert limited.status_code == 429
    assert "您提交反映过于频繁，请稍后再试。" in page(limited)
    assert "12345" in page(limited)
    assert 0 < int(limited["Retry-After"]) <= 3600
    assert Case.objects.count() == 2
    # Another address may still report.
    other = Client(REMOTE_ADDR="10.0.0.8")
    assert report(other, category, phone="13900000009", token="token-77777777").status_code == 302


def test_reports_are_limited_per_phone_number(
    tree: Tree, category: Category, settings: Settings
) -> None:
    settings.CIVICGRID_PORTAL_REPORTS_PER_PHONE = 1
    assert (
        report(Client(REMOTE_ADDR="10.0.0.1"), category, token="token-00000001").status_code == 302
    )
    limited = report(
        Client(REMOTE_ADDR="10.0.0.2"), category, phone="+86 13912345678", token="token-00000002"
    )
    assert limited.status_code == 429
    assert "该联系电话提交反映过于频繁，请稍后再试。" in page(limited)
    assert Case.objects.count() == 1


def test_lookups_are_limited_per_client_address(
    client: Client, new_case: Callable[..., Case], settings: Settings
) -> None:
    settings.CIVICGRID_PORTAL_LOOKUPS_PER_ADDRESS = 3
    case = new_case()
    for _ in range(3):
        assert lookup(client, case.tracking_code, "13900000000").status_code == 400
    limited = lookup(client, case.tracking_code)  # even the right answer now
    assert limited.status_code == 429
    assert "查询过于频繁，请稍后再试。" in page(limited)
    # A forged X-Forwarded-For does not help unless a proxy is configured to set it.
    forged = client.post(
        TRACK, {"code": case.tracking_code, "phone": PHONE}, HTTP_X_FORWARDED_FOR="1.2.3.4"
    )
    assert forged.status_code == 429
    settings.CIVICGRID_PORTAL_PROXY_COUNT = 1
    behind_proxy = client.post(
        TRACK, {"code": case.tracking_code, "phone": PHONE}, HTTP_X_FORWARDED_FOR="9.9.9.9, 1.2.3.4"
    )
    assert behind_proxy.status_code == 302


def test_limits_start_again_in_the_next_window(
    client: Client, new_case: Callable[..., Case], settings: Settings
) -> None:
    settings.CIVICGRID_PORTAL_LOOKUPS_PER_ADDRESS = 1
    case = new_case()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert lookup(client, case.tracking_code, "13900000000").status_code == 400
        assert lookup(client, case.tracking_code).status_code == 429
        traveller.shift(timedelta(hours=1))
        assert lookup(client, case.tracking_code).status_code == 302


# -- the map and the category picker ------------------------------------------------------------
def test_the_outline_is_public_and_tells_only_names_and_boundaries(
    client: Client, tree: Tree
) -> None:
    response = client.get(reverse("portal-outline"))
    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    body = response.json()
    features = body["features"]
    assert [(f["properties"]["name"], f["properties"]["level"]) for f in features] == [
        ("示范区", 0),
        ("西街道", 1),
        ("东街道", 1),
    ]
    assert all(set(f["properties"]) == {"name", "level"} for f in features)
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in features)
    assert "620103" not in response.content.decode()  # no codes, ids or grids below


def test_the_category_picker_searches_and_lists_subcategories(
    client: Client, category: Category, other_category: Category
) -> None:
    for words in ("占道", "zdjy", "T0502"):
        found = page(client.get(reverse("portal-category-search"), {"q": words}))
        assert f'data-category="{category.pk}"' in found, words
        assert f'data-major="{category.parent_id}"' in found
        assert f'data-category="{other_category.pk}"' not in found
    nothing = page(client.get(reverse("portal-category-search"), {"q": "没有这种问题"}))
    assert "没有找到匹配的类别" in nothing
    assert page(client.get(reverse("portal-category-search"), {"q": " "})).strip() == ""

    options = page(
        client.get(
            reverse("portal-categories"),
            {"major": str(category.parent_id), "selected": str(category.pk)},
            HTTP_HX_REQUEST="true",
        )
    )
    assert f'<option value="{category.pk}" selected>占道经营（测试）</option>' in options
    assert "暴露垃圾" not in options
    for bad in (category.pk, "x", ""):
        listed = page(client.get(reverse("portal-categories"), {"major": bad}))
        assert "请先选择大类" in listed
        assert '<option value="' + str(category.pk) not in listed

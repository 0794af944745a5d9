"""The call-taker's intake page through the test client, per persona.

刘芳 (``call_taker``) takes 12345 calls for the whole district; the category is
街面秩序（测试）/ 占道经营（测试） (T0502, pinyin ``zdjy``); ``EAST_POINT`` lies in grid
C1 of 丙社区, 东街道.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from civicgrid.accounts.models import User
from civicgrid.cases.models import Action, Case, Category, Channel, RequestType, Status, Urgency
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT, IntakeFactory
from civicgrid.grids import crs
from civicgrid.web.tests.case_pages import HTMX, signed_in

pytestmark = pytest.mark.django_db

URL = "/intake/"


def call(minor: Category, /, **overrides: Any) -> dict[str, Any]:
    """What the call-taker typed for a call about 占道经营 at ``EAST_POINT``."""
    data: dict[str, Any] = {
        "channel": Channel.HOTLINE,
        "external_id": "GD20261126001",
        "request_type": RequestType.COMPLAINT,
        "urgency": Urgency.NORMAL,
        "description": "幸福路桥下有人占道摆摊，影响通行",
        "category_q": "zdjy",
        "category": minor.code,
        "address": "东街道丙社区幸福路 12 号",
        "lon": str(EAST_POINT[0]),
        "lat": str(EAST_POINT[1]),
        "crs": crs.WGS84,
        "requester_name": "张先生",
        "requester_phone": "139 1234 5678",
        "decision": "accept",
        "token": "tok-0123456789",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def field_html(html: str, name: str) -> str:
    """The block of one field of the intake form (label, widget, errors)."""
    start = html.index(f'class="field field-{name}')
    end = html.index("</div>", start)
    return html[start:end]


# -- access ------------------------------------------------------------------------------------
def test_call_takers_dispatchers_and_supervisors_may_take_calls_and_no_one_else(
    call_taker: User,
    dispatcher: User,
    supervisor: User,
    unit_handler: User,
    grid_worker: User,
    community_staff: User,
    outsider: User,
) -> None:
    for user in (call_taker, dispatcher, supervisor):
        assert signed_in(user).get(URL).status_code == 200, user.username
    helpers = ["/intake/categories/?category_q=zdjy", "/intake/places/?address=丙社区"]
    helpers += ["/intake/locate/?lon=103.8&lat=36", "/intake/duplicates/"]
    for user in (unit_handler, grid_worker, community_staff, outsider):
        client = signed_in(user)
        assert client.get(URL).status_code == 404, user.username
        assert client.post(URL, {}).status_code == 404, user.username
        for url in helpers:
            assert client.get(url).status_code == 404, (user.username, url)
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


def test_the_nav_leads_call_takers_to_intake(call_taker: User, unit_handler: User) -> None:
    assert 'href="/intake/"' in signed_in(call_taker).get("/").content.decode()
    assert 'href="/intake/"' not in signed_in(unit_handler).get("/").content.decode()


def test_the_page_is_made_for_the_keyboard(call_taker: User) -> None:
    html = signed_in(call_taker).get(URL).content.decode()
    assert re.search(r'<textarea[^>]*autofocus[^>]*id="id_description"', html)
    # Enter accepts: the form's first submit button, before any 并入此案 button.
    first = re.search(r'<button type="submit" name="(\w+)" value="(\w+)"', html)
    assert first is not None
    assert first.groups() == ("decision", "accept")
    for key in ("Alt+M", "Alt+L", "Alt+W", "Alt+G", "Alt+R", "Alt+X", "Alt+A", "Alt+Z"):
        assert f"<kbd>{key}</kbd>" in html
    assert 'value="hotline" selected' in html  # 12345 by default
    assert 'name="urgency" value="normal"' in html


# -- the outcomes ------------------------------------------------------------------------------------
def test_a_call_is_created_and_accepted_in_one_go(call_taker: User, category: Category) -> None:
    client = signed_in(call_taker)
    response = client.post(URL, call(category))
    assert response.status_code == 302
    case = Case.objects.get(external_id="GD20261126001")
    assert response["Location"] == f"/intake/?last={case.pk}"
    assert case.status == Status.FILED
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    assert case.request_type == RequestType.COMPLAINT
    assert case.requester_phone == "13912345678"
    assert case.address == "东街道丙社区幸福路 12 号"
    assert list(case.events.values_list("action", flat=True)) == [Action.CREATE, Action.ACCEPT]
    page = client.get(response["Location"]).content.decode()
    assert f'href="/cases/{case.pk}/">{case.number}</a> 已受理，待派遣' in page
    # A fresh form for the next call.
    assert "幸福路桥下有人占道摆摊" not in page


def test_a_form_sent_twice_makes_one_case(call_taker: User, category: Category) -> None:
    client = signed_in(call_taker)
    first = client.post(URL, call(category, external_id=""))
    again = client.post(URL, call(category, external_id=""))
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert Case.objects.count() == 1


def test_a_call_out_of_scope_is_rejected_with_its_reason(
    call_taker: User, category: Category
) -> None:
    response = signed_in(call_taker).post(
        URL, call(category, decision="reject", reject_reason="属于民事纠纷，建议诉讼解决")
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.status == Status.REJECTED
    assert case.events.get(action=Action.REJECT).reason == "属于民事纠纷，建议诉讼解决"


def test_a_call_without_a_place_is_saved_for_later(call_taker: User, category: Category) -> None:
    response = signed_in(call_taker).post(
        URL, call(category, decision="save", lon="", lat="", address="说不清楚，在桥附近")
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.status == Status.NEW
    assert case.needs_location
    page = signed_in(call_taker).get(response["Location"]).content.decode()
    assert "已保存，待受理" in page


# -- bad input, next to its field, what was typed kept -------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"description": "  "}, "description", "请填写问题描述"),
        ({"category": ""}, "category", "请选择类别（小类）"),
        ({"category": "NOPE"}, "category", "找不到类别“NOPE”"),
        ({"request_type": None}, "request_type", "请选择诉求类型"),
        ({"requester_phone": "12345"}, "requester_phone", "请填写正确的手机号码"),
        ({"lon": "东经103"}, "lon", "请输入数字形式的经度"),
        ({"lat": ""}, "lon", "经度和纬度须同时填写"),
        ({"lon": "", "lat": ""}, "lon", "受理前请先确定位置"),
        ({"decision": "reject"}, "reject_reason", "请填写不予受理的理由"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_keeping_what_was_typed(
    call_taker: User, category: Category, overrides: dict[str, Any], field: str, message: str
) -> None:
    response = signed_in(call_taker).post(URL, call(category, **overrides))
    assert response.status_code == 400
    html = response.content.decode()
    if field == "reject_reason":
        block = html[html.index('class="reject-group') :]
        block = block[: block.index("</span>\n  </div>")]
    elif field in ("lon", "lat"):
        block = html[html.index('id="location-errors"') :]
        block = block[: block.index("</div>")]
    elif field == "request_type":
        block = html[html.index('class="field radios field-request_type') :]
        block = block[: block.index("</fieldset>")]
    elif field == "category":
        block = html[
            html.index('class="field field-category') : html.index('class="row row-requester')
        ]
    else:
        block = field_html(html, field)
    assert message in block
    assert Case.objects.count() == 0
    if field != "description":
        assert "幸福路桥下有人占道摆摊，影响通行" in html
    assert 'value="GD20261126001"' in html
    assert 'value="张先生"' in html


def test_a_hotline_order_number_is_taken_in_once(call_taker: User, category: Category) -> None:
    client = signed_in(call_taker)
    assert client.post(URL, call(category)).status_code == 302
    again = client.post(URL, call(category, token="another-token-42"))
    assert again.status_code == 400
    number = Case.objects.get().number
    assert f"该渠道的工单号已登记为案件 {number}" in field_html(
        again.content.decode(), "external_id"
    )
    assert Case.objects.count() == 1


# -- location -------------------------------------------------------------------------------------------
def test_gcj02_coordinates_are_converted_and_placed(call_taker: User, category: Category) -> None:
    gcj_lon, gcj_lat = crs.from_storage(EAST_POINT[0], EAST_POINT[1], crs.GCJ02)
    assert abs(gcj_lon - EAST_POINT[0]) > 1e-4  # a real shift, some hundred metres
    client = signed_in(call_taker)
    shown = client.get(
        "/intake/locate/",
        {"lon": str(gcj_lon), "lat": str(gcj_lat), "crs": crs.GCJ02},
        headers=HTMX,
    ).content.decode()
    assert re.findall(r"<li>([^<]+)</li>", shown) == ["示范区", "东街道", "丙社区", "丙社区第1网格"]
    assert 'data-lon="103.825' in shown
    response = client.post(
        URL, call(category, lon=str(gcj_lon), lat=str(gcj_lat), crs=crs.GCJ02, external_id="")
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.input_crs == crs.GCJ02
    assert case.lon is not None
    assert case.lat is not None
    assert abs(case.lon - EAST_POINT[0]) < 1e-6
    assert abs(case.lat - EAST_POINT[1]) < 1e-6


def test_a_point_outside_the_district_says_so_next_to_the_field(
    call_taker: User, category: Category
) -> None:
    client = signed_in(call_taker)
    lon, lat = OUTSIDE_POINT
    shown = client.get(
        "/intake/locate/", {"lon": str(lon), "lat": str(lat)}, headers=HTMX
    ).content.decode()
    assert "不在辖区内" in shown
    assert "<li>" not in shown
    response = client.post(URL, call(category, lon=str(lon), lat=str(lat)))
    assert response.status_code == 400
    html = response.content.decode()
    errors = html[html.index('id="location-errors"') :]
    assert "不在辖区内" in errors[: errors.index("</div>")]
    assert f'value="{lon}"' in html
    assert Case.objects.count() == 0


def test_a_community_named_in_the_address_offers_its_centre(
    call_taker: User, community_staff: User
) -> None:
    html = (
        signed_in(call_taker)
        .get("/intake/places/", {"address": "东街道丙社区幸福路 12 号"}, headers=HTMX)
        .content.decode()
    )
    names = re.findall(r'data-name="([^"]+)"', html)
    assert names == ["丙社区", "东街道"]  # the smaller place first
    assert 'data-lon="103.8500000" data-lat="35.9750000"' in html
    # Only places the user may see: 李华 works in 甲社区.
    other = signed_in(community_staff)
    assert other.get("/intake/places/", {"address": "丙社区"}).status_code == 404


def test_categories_are_found_by_pinyin_initials_chinese_or_code(
    call_taker: User, category: Category
) -> None:
    client = signed_in(call_taker)
    for query in ("zdjy", "占道", "T0502"):
        html = client.get(
            "/intake/categories/", {"category_q": query, "urgency": "urgent"}, headers=HTMX
        ).content.decode()
        assert 'data-code="T0502"' in html, query
        assert 'data-path="街面秩序（测试） › 占道经营（测试）"' in html, query
        assert "处置时限" in html
    nothing = client.get("/intake/categories/", {"category_q": "qqqq"}).content.decode()
    assert "没有匹配的类别" in nothing


# -- duplicates --------------------------------------------------------------------------------------
def test_possible_duplicates_show_as_the_place_and_category_are_known(
    call_taker: User, category: Category, new_case: IntakeFactory
) -> None:
    earlier = new_case(description="桥下环岛占道摆摊")
    client = signed_in(call_taker)
    near = {"lon": str(EAST_POINT[0] + 0.0003), "lat": str(EAST_POINT[1]), "crs": crs.WGS84}
    waiting = client.get("/intake/duplicates/", near, headers=HTMX).content.decode()
    assert earlier.number not in waiting  # no category yet
    html = client.get(
        "/intake/duplicates/", {**near, "category": category.code}, headers=HTMX
    ).content.decode()
    assert earlier.number in html
    assert f'name="merge_into" value="{earlier.pk}"' in html
    assert "27 米" in html
    far = {"lon": str(EAST_POINT[0] + 0.01), "lat": str(EAST_POINT[1]), "category": category.code}
    assert earlier.number not in client.get("/intake/duplicates/", far).content.decode()


def test_one_click_merges_the_call_into_the_case_it_repeats(
    call_taker: User, category: Category, new_case: IntakeFactory
) -> None:
    earlier = new_case(description="桥下环岛占道摆摊")
    client = signed_in(call_taker)
    response = client.post(URL, {**call(category), "merge_into": str(earlier.pk)})
    assert response.status_code == 302
    call_case = Case.objects.get(external_id="GD20261126001")
    assert call_case.status == Status.MERGED
    assert call_case.merged_into_id == earlier.pk
    assert call_case.requester_phone == "13912345678"  # the caller is kept for the follow-up
    note = earlier.events.get(action=Action.NOTE)
    assert call_case.number in note.reason
    page = client.get(response["Location"]).content.decode()
    assert "已并入原案件" in page
    assert f'href="/cases/{earlier.pk}/">{earlier.number}</a>' in page


def test_merging_into_a_case_out_of_sight_is_refused(call_taker: User, category: Category) -> None:
    response = signed_in(call_taker).post(URL, {**call(category), "merge_into": "999999"})
    assert response.status_code == 400
    assert "找不到要并入的案件" in response.content.decode()
    assert Case.objects.count() == 0


def test_the_pages_speak_english_when_chosen(call_taker: User, dispatcher: User) -> None:
    client = signed_in(call_taker)
    client.cookies["django_language"] = "en"
    html = client.get(URL).content.decode()
    assert "Hotline intake" in html
    assert "Save for later" in html
    assert "Hotline order number" in html
    other = signed_in(dispatcher)
    other.cookies["django_language"] = "en"
    assert "Dispatch selected" in other.get("/dispatch/").content.decode()

"""The dispatcher queue through the test client, per persona.

王敏 (``dispatcher``) dispatches for the whole district; the hotline's cases lie in
grid C1 of 东街道, where the dispatch catalogue suggests 城管执法局东街道中队
(``city_unit``, 陈静 its handler).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Status, Urgency
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.web.tests.case_pages import HTMX, Drive, numbers, signed_in

pytestmark = pytest.mark.django_db

URL = "/dispatch/"


def row(html: str, case: Case) -> str:
    start = html.index(f'data-case="{case.pk}"')
    return html[start : html.index("</tr>", start)]


def filed(new_case: IntakeFactory, call_taker: User, **fields: object) -> Case:
    case = new_case(**fields)
    return services.accept_case(case=case, actor=call_taker)


# -- access ------------------------------------------------------------------------------------
def test_dispatchers_and_supervisors_have_the_queue_and_no_one_else(
    dispatcher: User,
    supervisor: User,
    call_taker: User,
    unit_handler: User,
    grid_worker: User,
    community_staff: User,
    outsider: User,
    drive: Drive,
    city_unit: HandlingUnit,
) -> None:
    case = drive(Status.FILED)
    for user in (dispatcher, supervisor):
        assert signed_in(user).get(URL).status_code == 200, user.username
    post = {"unit": city_unit.pk, "version": case.version}
    for user in (call_taker, unit_handler, grid_worker, community_staff, outsider):
        client = signed_in(user)
        assert client.get(URL).status_code == 404, user.username
        assert client.post(f"/dispatch/{case.pk}/", post).status_code == 404, user.username
        bulk = {"unit": city_unit.pk, "case": [case.pk]}
        assert client.post("/dispatch/bulk/", bulk).status_code == 404, user.username
    assert Case.objects.get(pk=case.pk).status == Status.FILED
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    nav = signed_in(dispatcher).get("/").content.decode()
    assert 'href="/dispatch/"' in nav
    assert 'href="/dispatch/"' not in signed_in(call_taker).get("/").content.decode()


# -- the queue -------------------------------------------------------------------------------------
def test_the_queue_holds_filed_and_returned_cases_most_urgent_and_earliest_due_first(
    dispatcher: User, drive: Drive, new_case: IntakeFactory, call_taker: User
) -> None:
    drive(Status.NEW)
    drive(Status.DISPATCHED)
    drive(Status.CLOSED)
    oldest = filed(new_case, call_taker, description="最早的一般案件")
    later = filed(new_case, call_taker, description="稍后的一般案件")
    returned = drive(Status.RETURNED)
    urgent = filed(new_case, call_taker, description="紧急", urgency=Urgency.URGENT)
    emergency = filed(new_case, call_taker, description="特急", urgency=Urgency.EMERGENCY)
    # The later one is due first (its deadline moved up).
    Case.objects.filter(pk=later.pk).update(due_at=timezone.now() + timedelta(minutes=5))
    html = signed_in(dispatcher).get(URL).content.decode()
    assert numbers(html) == [
        emergency.number,
        urgent.number,
        later.number,
        oldest.number,
        returned.number,
    ]
    assert "dl-" in row(html, oldest)  # deadline colours from the shared table


def test_each_row_has_the_suggested_unit_chosen(
    dispatcher: User,
    drive: Drive,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> None:
    case = drive(Status.FILED)
    html = row(signed_in(dispatcher).get(URL).content.decode(), case)
    assert re.search(rf'<option value="{city_unit.pk}" selected>城管执法局东街道中队（建议）', html)
    assert f'<option value="{west_unit.pk}">西街道办事处</option>' in html
    assert f'name="case" value="{case.pk}"' in html
    assert 'form="bulk-dispatch"' in html
    assert ">派遣</button>" in html


def test_a_sent_back_case_shows_the_units_reason_and_is_redispatched(
    dispatcher: User, drive: Drive, west_unit: HandlingUnit
) -> None:
    case = drive(Status.RETURNED)
    client = signed_in(dispatcher)
    html = row(client.get(URL).content.decode(), case)
    assert "回退理由" in html
    assert "非我单位职责" in html
    assert ">改派</button>" in html
    assert "城管执法局东街道中队（建议）（已回退）" in html  # the unit that sent it back
    response = client.post(
        f"/dispatch/{case.pk}/", {"unit": west_unit.pk, "version": case.version}, headers=HTMX
    )
    assert response.status_code == 200
    assert f"案件 {case.number} 已改派至 西街道办事处" in response.content.decode()
    case.refresh_from_db()
    assert case.status == Status.DISPATCHED
    assert case.lead_unit_id == west_unit.pk


def test_one_click_dispatches_the_row_and_says_where_it_went(
    dispatcher: User, drive: Drive, city_unit: HandlingUnit
) -> None:
    case = drive(Status.FILED)
    response = signed_in(dispatcher).post(
        f"/dispatch/{case.pk}/", {"unit": city_unit.pk, "version": case.version}, headers=HTMX
    )
    assert response.status_code == 200
    assert response["HX-Reswap"] == "delete"
    assert response["HX-Retarget"] == f'#case-table tr[data-case="{case.pk}"]'
    assert response["HX-Trigger"] == "tasks-changed"
    body = response.content.decode()
    assert 'id="toast"' in body
    assert 'hx-swap-oob="true"' in body
    assert f"案件 {case.number} 已派遣至 城管执法局东街道中队" in body
    case.refresh_from_db()
    assert case.status == Status.DISPATCHED
    assert case.lead_unit_id == city_unit.pk
    assert case.events.last().payload["followed_suggestion"] is True  # type: ignore[union-attr]


def test_without_htmx_a_dispatch_comes_back_to_the_queue(
    dispatcher: User, drive: Drive, city_unit: HandlingUnit
) -> None:
    case = drive(Status.FILED)
    client = signed_in(dispatcher)
    response = client.post(f"/dispatch/{case.pk}/", {"unit": city_unit.pk, "version": case.version})
    assert response.status_code == 302
    assert response["Location"] == URL
    page = client.get(URL).content.decode()
    assert f"案件 {case.number} 已派遣至 城管执法局东街道中队" in page
    assert case.number not in numbers(page)


def test_a_row_taken_by_someone_else_says_so_and_stays(
    dispatcher: User, supervisor: User, drive: Drive, city_unit: HandlingUnit
) -> None:
    case = drive(Status.FILED)
    stale_version = case.version
    services.dispatch_case(case=case, actor=supervisor, unit=city_unit)
    response = signed_in(dispatcher).post(
        f"/dispatch/{case.pk}/", {"unit": city_unit.pk, "version": stale_version}, headers=HTMX
    )
    assert response.status_code == 200
    assert "HX-Reswap" not in response
    html = response.content.decode()
    assert "案件已被他人处理，请刷新后重试。" in html
    assert 'class="dispatch-row"' in html


def test_a_row_without_a_unit_is_refused_in_the_row(dispatcher: User, drive: Drive) -> None:
    case = drive(Status.FILED)
    response = signed_in(dispatcher).post(
        f"/dispatch/{case.pk}/", {"unit": "", "version": case.version}, headers=HTMX
    )
    assert "请选择单位" in response.content.decode()
    assert 'class="errorlist row-error"' in response.content.decode()
    assert Case.objects.get(pk=case.pk).status == Status.FILED


# -- bulk ---------------------------------------------------------------------------------------------
def test_bulk_dispatch_sends_each_and_reports_those_that_failed(
    dispatcher: User,
    supervisor: User,
    drive: Drive,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> None:
    first, taken, third = drive(Status.FILED), drive(Status.FILED), drive(Status.FILED)
    # Someone else dispatched one of them after the queue was shown.
    services.dispatch_case(case=taken, actor=supervisor, unit=west_unit)
    client = signed_in(dispatcher)
    response = client.post(
        "/dispatch/bulk/", {"unit": city_unit.pk, "case": [first.pk, taken.pk, third.pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == URL
    shown = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    assert shown == [
        (
            "success",
            f"已派遣 2 件至 城管执法局东街道中队：{first.number}、{third.number}",
        ),
        ("error", f"{taken.number} 未派遣：案件 {taken.number} 当前状态为“待签收”，不能执行“派遣”"),
    ]
    for case in (first, third):
        case.refresh_from_db()
        assert case.status == Status.DISPATCHED
        assert case.lead_unit_id == city_unit.pk
    taken.refresh_from_db()
    assert taken.lead_unit_id == west_unit.pk  # left as the other dispatcher sent it


def test_bulk_dispatch_asks_for_a_selection_and_a_unit(
    dispatcher: User, drive: Drive, city_unit: HandlingUnit
) -> None:
    case = drive(Status.FILED)
    other = drive(Status.FILED)
    client = signed_in(dispatcher)
    for data, message in (
        ({"unit": city_unit.pk}, "请先勾选要派遣的案件"),
        ({"case": [case.pk]}, "请选择单位"),
        ({"case": ["x"], "unit": city_unit.pk}, "所选案件无效"),
    ):
        response = client.post("/dispatch/bulk/", data)
        # The queue again, the message next to the unit select, what was chosen kept.
        assert response.status_code == 400
        html = response.content.decode()
        form = html[
            html.index('<form id="bulk-dispatch"') : html.index(
                "</form>", html.index('<form id="bulk-dispatch"')
            )
        ]
        assert 'class="bulk-dispatch has-error"' in form
        errors = form[form.index('class="bulk-errors"') :]
        assert message in errors
        chosen = re.search(r'<select name="unit"[^>]*>.*?</select>', form, re.S)
        assert chosen is not None
        selected = f'<option value="{city_unit.pk}" selected>'
        assert (selected in chosen.group(0)) == ("unit" in data)
        assert f'value="{case.pk}" aria-label' in html
        box = re.search(rf'<input type="checkbox" name="case" value="{case.pk}"[^>]*>', html)
        assert box is not None
        assert (" checked" in box.group(0)) == (data.get("case") == [case.pk])
        other_box = re.search(rf'<input type="checkbox" name="case" value="{other.pk}"[^>]*>', html)
        assert other_box is not None
        assert " checked" not in other_box.group(0)
        # The filters and pages still lead to the queue.
        assert 'action="/dispatch/"' in html
    assert Case.objects.get(pk=case.pk).status == Status.FILED


# -- query counts ----------------------------------------------------------------------------------
def test_the_queue_takes_the_same_number_of_queries_whatever_its_length(
    dispatcher: User,
    drive: Drive,
    new_case: IntakeFactory,
    call_taker: User,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    client = signed_in(dispatcher)
    drive(Status.RETURNED)
    for i in range(2):
        filed(new_case, call_taker, description=f"第{i}件")
    with CaptureQueriesContext(connection) as few:
        assert len(numbers(client.get(URL).content.decode())) == 3
    drive(Status.RETURNED)
    for i in range(24):
        filed(new_case, call_taker, description=f"又一件{i}")
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(numbers(client.get(URL).content.decode())) == 28

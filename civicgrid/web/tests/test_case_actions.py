"""Every action of the case page, through its form: what is allowed works and shows
the new status, bad input is refused next to the field keeping what was typed, a
stale page gets the conflict, and exactly the allowed actions are offered.

Cases come from the shared fixtures (civicgrid/cases/tests/fixtures.py): the
hotline's cases lie in grid C1 of 东街道, served by 城管执法局东街道中队.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import ApprovalStatus, AttachmentKind, Case, Status
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.web import portal
from civicgrid.web.forms.case_actions import (
    ACTIONS,
    INTERNAL_HELP,
    PUBLIC_HELP,
    PUBLIC_IF_PASSED_HELP,
)
from civicgrid.web.tests.case_pages import (
    HTMX,
    Ctx,
    Drive,
    actions_shown,
    field_block,
    jpeg,
    pending_extension,
    pending_void,
    signed_in,
)

pytestmark = pytest.mark.django_db


# -- actions ---------------------------------------------------------------------------------
def _verified(ctx: Ctx) -> Case:
    ctx.settings.CIVICGRID_CLOSE_ON_VERIFY = False
    case = ctx.drive(Status.HANDLED)
    return services.verify_case(case=case, actor=ctx.east_worker, passed=True)


def _unlocated(ctx: Ctx) -> Case:
    return ctx.new_case(lon=None, lat=None, address="七里河桥附近")


def _photo() -> SimpleUploadedFile:
    return SimpleUploadedFile("after.jpg", jpeg(), "image/jpeg")


#: (id, how to get the case, who acts, action, form data, status after, check)
STORIES: list[tuple[str, Callable[[Ctx], Case], str, str, Callable[[Ctx, Case], dict[str, Any]], str]] = [
    ("accept", lambda c: c.drive(Status.NEW), "call_taker", "accept", lambda c, k: {}, "filed"),
    ("reject", lambda c: c.drive(Status.NEW), "call_taker", "reject", lambda c, k: {"reason": "不属于受理范围"}, "rejected"),
    ("locate", _unlocated, "call_taker", "locate", lambda c, k: {"lon": "103.725", "lat": "35.975", "crs": "wgs84"}, "new"),
    ("dispatch", lambda c: c.drive(Status.FILED), "dispatcher", "dispatch", lambda c, k: {"unit": c.city_unit.pk, "assisting": [c.west_unit.pk]}, "dispatched"),
    ("redispatch", lambda c: c.drive(Status.RETURNED), "dispatcher", "dispatch", lambda c, k: {"unit": c.west_unit.pk}, "dispatched"),
    ("acknowledge", lambda c: c.drive(Status.DISPATCHED), "unit_handler", "acknowledge", lambda c, k: {}, "in_progress"),
    ("send_back", lambda c: c.drive(Status.DISPATCHED), "unit_handler", "send_back", lambda c, k: {"reason": "非我单位职责"}, "returned"),
    ("request_extension", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "request_extension", lambda c, k: {"reason": "需要采购配件", "extra_amount": "2"}, "in_progress"),
    ("approve_extension", pending_extension, "supervisor", "decide_extension", lambda c, k: {"decision": "approve"}, "in_progress"),
    ("deny_extension", pending_extension, "supervisor", "decide_extension", lambda c, k: {"decision": "deny", "note": "时限充足"}, "in_progress"),
    ("park", lambda c: c.drive(Status.FILED), "supervisor", "park", lambda c, k: {"reason": "待道路改造"}, "parked"),
    ("resume", lambda c: c.drive(Status.PARKED), "supervisor", "resume", lambda c, k: {}, "filed"),
    ("handle", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "handle", lambda c, k: {"result": "已劝离摊贩", "photos": [_photo(), _photo()]}, "handled"),
    ("verify_pass", lambda c: c.drive(Status.HANDLED), "east_worker", "verify", lambda c, k: {"verdict": "pass", "photos": _photo()}, "closed"),
    ("verify_fail", lambda c: c.drive(Status.HANDLED), "east_worker", "verify", lambda c, k: {"verdict": "fail", "note": "摊贩又回来了"}, "in_progress"),
    ("close", _verified, "supervisor", "close", lambda c, k: {}, "closed"),
    ("follow_up", lambda c: c.drive(Status.CLOSED), "call_taker", "follow_up", lambda c, k: {"satisfaction": "4"}, "closed"),
    ("reopen", lambda c: c.drive(Status.CLOSED), "call_taker", "reopen", lambda c, k: {"reason": "市民反映仍有摊贩"}, "dispatched"),
    ("urge", lambda c: c.drive(Status.DISPATCHED), "leader", "urge", lambda c, k: {"reason": "尽快处置"}, "dispatched"),
    ("request_void", lambda c: c.drive(Status.FILED), "call_taker", "request_void", lambda c, k: {"reason": "重复登记"}, "filed"),
    ("approve_void", pending_void, "supervisor", "decide_void", lambda c, k: {"decision": "approve"}, "voided"),
    ("merge", lambda c: c.drive(Status.NEW), "call_taker", "merge", lambda c, k: {"into": c.new_case(description="原案").number}, "merged"),
]  # fmt: skip


TEXT_FIELDS = ("note", "reason", "result")


#: A test marked with it runs once per story.
EVERY_STORY = pytest.mark.parametrize(
    ("prepare", "persona", "action", "data", "status"),
    [pytest.param(*story[1:], id=story[0]) for story in STORIES],
)


@EVERY_STORY
def test_every_text_says_truly_whether_the_citizen_will_read_it(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Any,
    prepare: Callable[[Ctx], Case],
    persona: str,
    action: str,
    data: Callable[[Ctx, Case], dict[str, Any]],
    status: str,
) -> None:
    """What staff type into a field marked "市民查询进度时可见" shows on the citizen's
    tracking page; what they type into any other field never does."""
    settings.MEDIA_ROOT = tmp_path
    fields = ACTIONS[action].form_class.base_fields
    texts = [name for name in TEXT_FIELDS if name in fields]
    if not texts:
        pytest.skip("no text to write")
    ctx = Ctx(request)
    case = prepare(ctx)
    marks = {name: f"标记{name}甲乙" for name in texts}
    response = signed_in(getattr(ctx, persona)).post(
        f"/cases/{case.pk}/actions/{action}/",
        {"version": case.version, **data(ctx, case), **marks},
        headers=HTMX,
    )
    assert 'class="alert success"' in response.content.decode()
    public = " ".join(e.reason for e in portal.public_timeline(Case.objects.get(pk=case.pk)))
    for name, mark in marks.items():
        help_text = str(fields[name].help_text)
        if help_text == str(PUBLIC_IF_PASSED_HELP):
            shown = status == Status.CLOSED  # the verification passed
        else:
            assert help_text in (str(PUBLIC_HELP), str(INTERNAL_HELP), "")
            shown = help_text == str(PUBLIC_HELP)
        assert (mark in public) == shown, (name, help_text, public)


@EVERY_STORY
def test_an_allowed_action_works_through_the_page_and_shows_the_new_status(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Any,
    prepare: Callable[[Ctx], Case],
    persona: str,
    action: str,
    data: Callable[[Ctx, Case], dict[str, Any]],
    status: str,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    ctx = Ctx(request)
    case = prepare(ctx)
    user: User = getattr(ctx, persona)
    client = signed_in(user)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert f'id="action-{action}"' in page
    response = client.post(
        f"/cases/{case.pk}/actions/{action}/",
        {"version": case.version, **data(ctx, case)},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "tasks-changed"  # the badge counts again
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="case-page"')
    assert 'class="alert success"' in html, html
    assert f'<span class="status status-{status}">' in html
    after = Case.objects.get(pk=case.pk)
    assert after.status == status
    assert after.version > case.version
    # The timeline shows what was done, by whom.
    last = after.events.exclude(action="note").latest("at", "id")
    assert str(user) in html
    assert str(last.get_action_display()) in html
    # What came with it.
    if action == "handle":
        photos = list(after.attachments.all())
        assert [p.kind for p in photos] == [AttachmentKind.AFTER] * 2
        assert {p.event_id for p in photos} == {last.pk}
        assert html.count('?thumbnail=true"') == 2
    if action == "verify" and status == "closed":
        assert after.attachments.get().kind == AttachmentKind.VERIFICATION
    if action == "dispatch":
        assert after.lead_unit is not None
    if action == "locate":
        assert after.grid is not None
        assert after.grid.code == "620103001001001"
        assert "甲社区第1网格" in html
    if action == "follow_up":
        assert after.satisfaction == 4
    if action in ("request_extension", "request_void"):
        assert after.approvals.get().status == ApprovalStatus.PENDING
    if action == "urge":
        assert after.urge_count == 1


def test_a_plain_form_post_redirects_to_the_case_page_with_a_message(
    drive: Drive, dispatcher: User, city_unit: HandlingUnit
) -> None:
    case = drive(Status.FILED)
    client = signed_in(dispatcher)
    response = client.post(
        f"/cases/{case.pk}/actions/dispatch/", {"version": case.version, "unit": city_unit.pk}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{case.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "已完成：派遣" in page
    assert '<span class="status status-dispatched">' in page


#: (id, how to get the case, who acts, action, form data, field the message is next to, message)
BAD_INPUT: list[tuple[str, Callable[[Ctx], Case], str, str, dict[str, Any], str, str]] = [
    ("empty reject reason", lambda c: c.drive(Status.NEW), "call_taker", "reject", {"reason": "  "}, "reason", "须填写理由"),
    ("empty send-back reason", lambda c: c.drive(Status.DISPATCHED), "unit_handler", "send_back", {"reason": ""}, "reason", "须填写理由"),
    ("unknown unit", lambda c: c.drive(Status.FILED), "dispatcher", "dispatch", {"unit": "999999", "note": "请尽快"}, "unit", "选择一个有效的选项"),
    ("lead also assisting", lambda c: c.drive(Status.FILED), "dispatcher", "dispatch", {"unit": "{city}", "assisting": ["{city}"], "note": "请尽快"}, "assisting", "主办单位不能同时是协办单位"),
    ("outside coordinates", _unlocated, "call_taker", "locate", {"lon": "104.5", "lat": "36.5", "crs": "wgs84"}, "lon", "不在辖区内"),
    ("coordinates not numbers", _unlocated, "call_taker", "locate", {"lon": "东经103", "lat": "35.975", "crs": "wgs84"}, "lon", "输入一个数字"),
    ("zero extension", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "request_extension", {"reason": "需要采购配件", "extra_amount": "0"}, "extra_amount", "延长时限须大于零"),
    ("empty result", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "handle", {"result": " "}, "result", "请填写处置结果"),
    ("not a photo", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "handle", {"result": "已劝离摊贩", "photos": "{bad}"}, "photos", "bad.jpg"),
    ("failed verification without a note", lambda c: c.drive(Status.HANDLED), "east_worker", "verify", {"verdict": "fail", "note": ""}, "note", "须填写理由"),
    ("no satisfaction", lambda c: c.drive(Status.CLOSED), "call_taker", "follow_up", {"note": "电话未接通"}, "satisfaction", "这个字段是必填项"),
    ("unknown merge target", lambda c: c.drive(Status.NEW), "call_taker", "merge", {"into": "NOPE-1", "note": "同一处"}, "into", "找不到编号为 NOPE-1 的案件"),
    ("empty urge reason", lambda c: c.drive(Status.FILED), "supervisor", "urge", {"reason": ""}, "reason", "须填写理由"),
    ("denial without a note", pending_void, "supervisor", "decide_void", {"decision": "deny", "note": ""}, "note", "须填写理由"),
    ("extension denied without a note", pending_extension, "supervisor", "decide_extension", {"decision": "deny", "note": ""}, "note", "须填写理由"),
    ("no decision", pending_extension, "supervisor", "decide_extension", {"note": "看情况"}, "decision", "这个字段是必填项"),
    ("empty park reason", lambda c: c.drive(Status.FILED), "supervisor", "park", {"reason": " "}, "reason", "须填写理由"),
    ("empty reopen reason", lambda c: c.drive(Status.CLOSED), "call_taker", "reopen", {"reason": ""}, "reason", "须填写理由"),
    ("empty void reason", lambda c: c.drive(Status.FILED), "call_taker", "request_void", {"reason": ""}, "reason", "须填写理由"),
    ("extension not a number", lambda c: c.drive(Status.IN_PROGRESS), "unit_handler", "request_extension", {"reason": "需要采购配件", "extra_amount": "两天"}, "extra_amount", "输入一个数字"),
    ("verification photo not an image", lambda c: c.drive(Status.HANDLED), "east_worker", "verify", {"verdict": "pass", "note": "已清理", "photos": "{bad}"}, "photos", "bad.jpg"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("prepare", "persona", "action", "data", "field", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUT],
)
def test_bad_input_is_refused_next_to_the_field_keeping_what_was_typed(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Any,
    prepare: Callable[[Ctx], Case],
    persona: str,
    action: str,
    data: dict[str, Any],
    field: str,
    message: str,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    ctx = Ctx(request)
    case = prepare(ctx)
    values = {
        k: [str(ctx.city_unit.pk)]
        if v == ["{city}"]
        else str(ctx.city_unit.pk)
        if v == "{city}"
        else v
        for k, v in data.items()
    }
    if values.get("photos") == "{bad}":
        values["photos"] = [_photo(), SimpleUploadedFile("bad.jpg", b"not an image", "image/jpeg")]
    client = signed_in(getattr(ctx, persona))
    response = client.post(
        f"/cases/{case.pk}/actions/{action}/", {"version": case.version, **values}, headers=HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    block = field_block(html, action, field)
    assert "has-error" in block
    assert message in block, block
    # Nothing changed, and what was typed is still there.
    after = Case.objects.get(pk=case.pk)
    assert (after.status, after.version) == (case.status, case.version)
    assert not after.attachments.exists()
    for name, value in values.items():
        if name in ("photos", "version") or not isinstance(value, str) or not value.strip():
            continue
        typed = field_block(html, action, name)
        assert value in typed, (name, typed)
    # The form with the error stays open.
    assert re.search(
        rf'<details class="action action-{action}[^"]*" id="action-{action}" open>', html
    )


def test_a_stale_page_gets_the_conflict_message(
    drive: Drive,
    dispatcher: User,
    supervisor: User,
    city_unit: HandlingUnit,
) -> None:
    case = drive(Status.FILED)
    stale = case.version
    services.urge_case(case=case, actor=supervisor, reason="尽快")  # someone else, meanwhile
    client = signed_in(dispatcher)
    for headers in (HTMX, {}):
        response = client.post(
            f"/cases/{case.pk}/actions/dispatch/",
            {"version": stale, "unit": city_unit.pk},
            headers=headers,
        )
        html = response.content.decode()
        assert response.status_code == (200 if headers else 409)
        assert "案件已被他人处理，请刷新后重试。" in html
        assert Case.objects.get(pk=case.pk).status == Status.FILED
        # The page shows the case as it is now, with the current version in its forms.
        current = Case.objects.get(pk=case.pk).version
        assert f'name="version" value="{current}"' in html
        assert "督办" in html


def test_a_conflict_from_the_service_is_shown_the_same_way(
    drive: Drive,
    dispatcher: User,
    city_unit: HandlingUnit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from civicgrid.cases.errors import CaseConflict

    def lose(**kwargs: Any) -> Case:
        raise CaseConflict("案件刚被他人处理")

    monkeypatch.setattr(services, "dispatch_case", lose)
    case = drive(Status.FILED)
    response = signed_in(dispatcher).post(
        f"/cases/{case.pk}/actions/dispatch/",
        {"version": case.version, "unit": city_unit.pk},
        headers=HTMX,
    )
    assert "案件已被他人处理，请刷新后重试。" in response.content.decode()


@pytest.mark.parametrize(
    ("status", "persona", "expected"),
    [
        (Status.NEW, "call_taker", {"accept", "reject", "locate", "request_void", "merge"}),
        (Status.NEW, "dispatcher", {"accept", "locate", "request_void", "merge"}),
        (Status.FILED, "dispatcher", {"dispatch", "locate", "request_void", "merge"}),
        (Status.FILED, "unit_handler", None),  # cannot even see it
        (Status.DISPATCHED, "unit_handler", {"acknowledge", "send_back"}),
        (Status.DISPATCHED, "dispatcher", {"locate", "request_void"}),
        (Status.IN_PROGRESS, "unit_handler", {"handle", "send_back", "request_extension"}),
        (Status.IN_PROGRESS, "east_worker", set()),
        (Status.IN_PROGRESS, "community_staff", None),
        (Status.HANDLED, "east_worker", {"verify"}),
        (Status.HANDLED, "unit_handler", set()),
        (Status.CLOSED, "call_taker", {"follow_up", "reopen"}),
        (Status.CLOSED, "supervisor", {"follow_up", "reopen"}),
        (Status.PARKED, "supervisor", {"resume", "urge", "request_void"}),
        (Status.FILED, "leader", {"urge"}),
        (Status.REJECTED, "call_taker", set()),
    ],
)
def test_exactly_the_allowed_actions_are_rendered(
    request: pytest.FixtureRequest,
    status: str,
    persona: str,
    expected: set[str] | None,
) -> None:
    ctx = Ctx(request)
    case = ctx.drive(status)
    response = signed_in(getattr(ctx, persona)).get(f"/cases/{case.pk}/")
    if expected is None:
        assert response.status_code == 404
        return
    html = response.content.decode()
    assert actions_shown(html) == expected
    if not expected:
        assert "您当前没有可执行的操作。" in html


def test_decisions_show_only_with_a_pending_request_and_show_it(
    request: pytest.FixtureRequest, supervisor: User
) -> None:
    ctx = Ctx(request)
    plain = ctx.drive(Status.IN_PROGRESS)
    shown = actions_shown(signed_in(supervisor).get(f"/cases/{plain.pk}/").content.decode())
    assert "decide_extension" not in shown
    assert "decide_void" not in shown
    pending = pending_extension(ctx)
    html = signed_in(supervisor).get(f"/cases/{pending.pk}/").content.decode()
    assert "decide_extension" in actions_shown(html)
    assert "需要采购配件" in html
    assert "陈静" in html
    unit_page = signed_in(ctx.unit_handler).get(f"/cases/{pending.pk}/").content.decode()
    assert "request_extension" not in actions_shown(unit_page)  # one pending at a time


def test_the_dispatch_form_preselects_the_suggested_unit_and_shows_a_send_back_reason(
    drive: Drive, dispatcher: User, city_unit: HandlingUnit
) -> None:
    filed = drive(Status.FILED)
    assert filed.suggested_unit_id == city_unit.pk
    html = signed_in(dispatcher).get(f"/cases/{filed.pk}/").content.decode()
    assert f'<option value="{city_unit.pk}" selected>{city_unit.name}</option>' in html
    returned = drive(Status.RETURNED)
    html = signed_in(dispatcher).get(f"/cases/{returned.pk}/").content.decode()
    assert "<summary>改派</summary>" in html
    assert "单位回退理由：非我单位职责" in html


def test_the_merge_form_suggests_possible_duplicates_the_user_may_see(
    new_case: IntakeFactory, call_taker: User
) -> None:
    original = new_case(description="桥下有人摆摊")
    duplicate = new_case(description="桥下又有人摆摊")
    html = signed_in(call_taker).get(f"/cases/{duplicate.pk}/").content.decode()
    block = field_block(html, "merge", "into")
    assert f'list="merge-candidates-{duplicate.pk}"' in block
    assert f"疑似重复：{original.number}（0 米）" in block
    assert f'<option value="{original.number}">' in html


def test_an_action_not_offered_is_refused_with_the_services_message(
    drive: Drive, unit_handler: User, city_unit: HandlingUnit
) -> None:
    case = drive(Status.DISPATCHED)
    response = signed_in(unit_handler).post(
        f"/cases/{case.pk}/actions/dispatch/",
        {"version": case.version, "unit": city_unit.pk},
        headers=HTMX,
    )
    html = response.content.decode()
    assert f"您无权对案件 {case.number} 执行“派遣”" in html
    assert actions_shown(html) == {"acknowledge", "send_back"}
    assert Case.objects.get(pk=case.pk).version == case.version
    assert signed_in(unit_handler).post(f"/cases/{case.pk}/actions/nope/").status_code == 404
    assert signed_in(unit_handler).get(f"/cases/{case.pk}/actions/acknowledge/").status_code == 405

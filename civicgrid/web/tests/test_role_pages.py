"""The role pages, per persona: the unit's inbox, the supervisor's desk, the grid
worker's pages (phone) and the overview.

Cases come from the shared fixtures (civicgrid/cases/tests/fixtures.py): the
hotline's cases lie in grid C1 of 东街道, served by 城管执法局东街道中队 (陈静 its
handler, 吴刚 the grid worker of C1); ``west_case`` lies in grid A1 of 甲社区 (赵磊
its grid worker, 李华 its community staff).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import (
    Action,
    Approval,
    ApprovalStatus,
    Attachment,
    AttachmentKind,
    Case,
    Category,
    CategoryKind,
    Channel,
    Status,
)
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.case_pages import (
    HTMX,
    Ctx,
    Drive,
    jpeg,
    numbers,
    pending_extension,
    pending_void,
    signed_in,
)

pytestmark = pytest.mark.django_db


def photo(name: str = "site.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, jpeg(), content_type="image/jpeg")


#: The catalogue's categories these tests tap (loaded by a migration; made again here
#: when a committing test elsewhere flushed them).
FIELD_CATEGORIES = [
    ("SJ01", "市容环境", "", None),
    ("SJ0102", "暴露垃圾", "bllj 垃圾 lj", "SJ01"),
    ("SJ0104", "道路不洁", "dlbj", "SJ01"),
    ("SJ02", "宣传广告", "", None),
    ("SJ0201", "非法小广告", "ffxgg 小广告 xgg", "SJ02"),
    ("SJ05", "街面秩序", "", None),
    ("SJ0502", "占道经营", "zdjy", "SJ05"),
    ("BJ01", "公用设施", "", None),
    ("BJ0103", "雨水井盖", "ysjg", "BJ01"),
]


def ensure_field_categories() -> None:
    for code, name, pinyin, parent in FIELD_CATEGORIES:
        kind = CategoryKind.COMPONENT if code.startswith("BJ") else CategoryKind.EVENT
        Category.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "pinyin": pinyin,
                "parent": Category.objects.get(code=parent) if parent else None,
            },
        )


@pytest.fixture(autouse=True)
def _field_categories(db: None) -> None:
    ensure_field_categories()


@pytest.fixture
def ctx(request: pytest.FixtureRequest) -> Ctx:
    return Ctx(request)


@pytest.fixture
def west_case(new_case: IntakeFactory) -> Case:
    return new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西街道路灯不亮")


# -- access ----------------------------------------------------------------------------------
PAGES = ["/inbox/", "/desk/", "/field/", "/field/report/", "/overview/"]
WHO_SEES = {
    "/inbox/": {"chenjing"},
    "/desk/": {"majun"},
    "/field/": {"zhaolei", "wugang"},
    "/field/report/": {"zhaolei", "wugang"},
    "/overview/": {"majun", "lihua", "leader", "wangmin", "zhaolei", "wugang"},
}


@pytest.mark.parametrize("url", PAGES)
def test_each_page_is_for_its_roles_and_404_for_everyone_else(
    url: str,
    unit_handler: User,
    supervisor: User,
    grid_worker: User,
    east_worker: User,
    community_staff: User,
    leader: User,
    dispatcher: User,
    outsider: User,
) -> None:
    people = [
        unit_handler,
        supervisor,
        grid_worker,
        east_worker,
        community_staff,
        leader,
        dispatcher,
        outsider,
    ]
    seen = {u.username for u in people if signed_in(u).get(url).status_code == 200}
    assert seen == WHO_SEES[url]
    for u in people:
        if u.username not in seen:
            assert signed_in(u).get(url).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]


def test_the_nav_leads_each_role_to_its_page(
    unit_handler: User, supervisor: User, grid_worker: User, community_staff: User
) -> None:
    def links(user: User) -> set[str]:
        html = signed_in(user).get("/cases/").content.decode()
        return set(re.findall(r'href="(/(?:inbox|desk|field|overview)/)"', html))

    assert links(unit_handler) == {"/inbox/"}
    assert links(supervisor) == {"/desk/", "/overview/"}
    assert "/field/" in links(grid_worker)
    assert links(community_staff) == {"/overview/"}


def test_row_actions_are_404_for_others_and_for_cases_outside_the_scope(
    drive: Drive,
    west_case: Case,
    unit_handler: User,
    supervisor: User,
    outsider: User,
    west_handler: User,
) -> None:
    case = drive(Status.DISPATCHED)
    post = {"version": case.version}
    assert signed_in(outsider).post(f"/inbox/{case.pk}/acknowledge/", post).status_code == 404
    assert signed_in(supervisor).post(f"/inbox/{case.pk}/acknowledge/", post).status_code == 404
    assert signed_in(west_handler).post(f"/inbox/{case.pk}/acknowledge/", post).status_code == 404
    # An action the inbox does not offer is 404 too (the case page has it).
    assert signed_in(unit_handler).post(f"/inbox/{case.pk}/handle/", post).status_code == 404
    assert signed_in(unit_handler).post(f"/desk/{case.pk}/urge/", post).status_code == 404
    assert Case.objects.get(pk=case.pk).status == Status.DISPATCHED


# -- the unit's inbox --------------------------------------------------------------------------
def test_the_inbox_lists_what_my_unit_must_acknowledge_and_handle(
    drive: Drive,
    west_case: Case,
    dispatcher: User,
    call_taker: User,
    west_unit: HandlingUnit,
    unit_handler: User,
    west_handler: User,
) -> None:
    waiting = drive(Status.DISPATCHED)
    working = drive(Status.IN_PROGRESS)
    drive(Status.HANDLED)  # handled: not in the inbox any more
    west = services.dispatch_case(
        case=services.accept_case(case=west_case, actor=call_taker),
        actor=dispatcher,
        unit=west_unit,
    )
    html = signed_in(unit_handler).get("/inbox/").content.decode()
    assert set(numbers(html)) == {waiting.number, working.number}
    assert f"/inbox/{waiting.pk}/acknowledge/" in html
    assert f"/inbox/{working.pk}/acknowledge/" not in html
    assert f"/cases/{working.pk}/#action-handle" in html  # report back with after-photos
    assert f"/cases/{working.pk}/#action-request_extension" in html
    assert 'class="case-row dl-green"' in html
    assert set(numbers(signed_in(west_handler).get("/inbox/").content.decode())) == {west.number}


def test_a_unit_acknowledges_in_the_row(drive: Drive, unit_handler: User) -> None:
    case = drive(Status.DISPATCHED)
    response = signed_in(unit_handler).post(
        f"/inbox/{case.pk}/acknowledge/", {"version": case.version}, headers=HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<div class="row-actions" id="row-inbox-{case.pk}">')
    assert "已完成：签收" in html
    assert response["HX-Trigger"] == "tasks-changed"
    assert Case.objects.get(pk=case.pk).status == Status.IN_PROGRESS
    # Now in progress, the row offers the report back and the extension on the case page.
    assert "#action-handle" in html


def test_sending_back_needs_a_reason_next_to_its_field(drive: Drive, unit_handler: User) -> None:
    case = drive(Status.IN_PROGRESS)
    client = signed_in(unit_handler)
    url = f"/inbox/{case.pk}/send_back/"
    blank = client.post(url, {"version": case.version, "reason": "  "}, headers=HTMX)
    assert blank.status_code == 200  # htmx swaps only 2xx
    cell = blank.content.decode()
    assert "须填写理由" in cell
    assert "field field-reason has-error" in cell
    assert Case.objects.get(pk=case.pk).status == Status.IN_PROGRESS
    # Too long: the form says so, and what was typed is kept.
    typed = "不属于本单位职责" * 130
    long = client.post(url, {"version": case.version, "reason": typed}, headers=HTMX)
    assert typed in long.content.decode()
    assert "errorlist" in long.content.decode()
    # A plain post with the error: the whole page, the row's form open with the error.
    plain = client.post(url, {"version": case.version, "reason": ""})
    assert plain.status_code == 400
    page = plain.content.decode()
    assert "须填写理由" in page
    assert '<details class="row-form" open>' in page
    ok = client.post(url, {"version": case.version, "reason": "非我单位职责"}, headers=HTMX)
    assert "已完成：回退" in ok.content.decode()
    assert Case.objects.get(pk=case.pk).status == Status.RETURNED


def test_a_stale_row_gets_a_conflict_message(drive: Drive, unit_handler: User) -> None:
    case = drive(Status.DISPATCHED)
    stale = case.version
    services.acknowledge_case(case=case, actor=unit_handler)
    response = signed_in(unit_handler).post(
        f"/inbox/{case.pk}/acknowledge/", {"version": stale}, headers=HTMX
    )
    assert "请刷新后重试" in response.content.decode()
    plain = signed_in(unit_handler).post(f"/inbox/{case.pk}/send_back/", {"version": stale})
    assert plain.status_code == 409


def test_the_inbox_needs_the_same_queries_for_2_or_12_cases(
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    city_unit: HandlingUnit,
    unit_handler: User,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    def dispatched(n: int) -> None:
        for i in range(n):
            case = services.accept_case(case=new_case(description=f"第{i}件"), actor=call_taker)
            services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)

    client = signed_in(unit_handler)
    dispatched(2)
    with CaptureQueriesContext(connection) as few:
        assert len(numbers(client.get("/inbox/").content.decode())) == 2
    dispatched(10)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(numbers(client.get("/inbox/").content.decode())) == 12


# -- the supervisor's desk ---------------------------------------------------------------------
def test_the_desk_shows_pending_requests_with_reason_and_amount(ctx: Ctx, supervisor: User) -> None:
    extension = pending_extension(ctx)
    void = pending_void(ctx)
    html = signed_in(supervisor).get("/desk/").content.decode()
    assert "需要采购配件" in html
    assert "延长 2 工作" in html
    assert "重复登记" in html
    assert f"/desk/{extension.pk}/decide_extension/" in html
    assert f"/desk/{void.pk}/decide_void/" in html
    assert re.search(r'<span class="tile-n">2</span><span class="tile-label">待审批', html)


def test_the_supervisor_approves_an_extension_in_the_row(ctx: Ctx, supervisor: User) -> None:
    case = pending_extension(ctx)
    before = case.due_at
    response = signed_in(supervisor).post(
        f"/desk/{case.pk}/decide_extension/",
        {"version": case.version, "decision": "approve", "what": "approval"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert f'id="row-desk-approval-{case.pk}"' in response.content.decode()
    assert "已完成：审批延期" in response.content.decode()
    case.refresh_from_db()
    assert before is not None
    assert case.due_at is not None
    assert case.due_at > before
    assert Approval.objects.get(case=case).status == ApprovalStatus.APPROVED


def test_denying_a_void_needs_a_note_and_keeps_the_choice(ctx: Ctx, supervisor: User) -> None:
    case = pending_void(ctx)
    client = signed_in(supervisor)
    url = f"/desk/{case.pk}/decide_void/"
    bad = client.post(
        url, {"version": case.version, "decision": "deny", "what": "approval"}, headers=HTMX
    )
    cell = bad.content.decode()
    assert "须填写理由" in cell
    assert 'value="deny" checked' in cell
    assert Approval.objects.get(case=case).status == ApprovalStatus.PENDING
    ok = client.post(
        url,
        {"version": case.version, "decision": "deny", "note": "并非重复", "what": "approval"},
        headers=HTMX,
    )
    assert "已完成：审批作废" in ok.content.decode()
    assert Approval.objects.get(case=case).status == ApprovalStatus.DENIED
    assert Case.objects.get(pk=case.pk).status == Status.FILED


def test_the_desk_closes_verified_cases_when_auto_close_is_off(
    drive: Drive, supervisor: User, east_worker: User, settings: Settings
) -> None:
    settings.CIVICGRID_CLOSE_ON_VERIFY = False
    case = services.verify_case(case=drive(Status.HANDLED), actor=east_worker, passed=True)
    waiting = drive(Status.HANDLED)  # not verified yet: not for closing
    client = signed_in(supervisor)
    html = client.get("/desk/").content.decode()
    assert f'id="row-desk-closing-{case.pk}"' in html
    assert f'id="row-desk-closing-{waiting.pk}"' not in html
    response = client.post(
        f"/desk/{case.pk}/close/", {"version": case.version, "what": "closing"}, headers=HTMX
    )
    assert "已完成：结案" in response.content.decode()
    assert Case.objects.get(pk=case.pk).status == Status.CLOSED


def test_the_desk_lists_todays_breaches_and_urges_them(drive: Drive, supervisor: User) -> None:
    late = drive(Status.DISPATCHED)
    on_time = drive(Status.DISPATCHED)
    assert late.due_at is not None
    later = late.due_at + timedelta(minutes=5)
    Case.objects.filter(pk=on_time.pk).update(due_at=later + timedelta(days=30))
    on_time.deadlines.update(due_at=later + timedelta(days=30))
    with time_machine.travel(later, tick=False):
        services.mark_overdue(now=timezone.now())
        client = signed_in(supervisor)
        html = client.get("/desk/").content.decode()
        assert f'id="row-desk-breached-{late.pk}"' in html
        assert f'id="row-desk-breached-{on_time.pk}"' not in html
        assert "签收" in html  # the stage that breached
        url = f"/desk/{late.pk}/urge/"
        blank = client.post(url, {"version": late.version, "what": "breached"}, headers=HTMX)
        assert "须填写理由" in blank.content.decode()
        ok = client.post(
            url,
            {"version": late.version, "reason": "请今天内签收", "what": "breached"},
            headers=HTMX,
        )
        assert "已完成：督办" in ok.content.decode()
    assert Case.objects.get(pk=late.pk).urge_count == 1
    # Another day: no longer a breach of today.
    with time_machine.travel(later + timedelta(days=2), tick=False):
        html = signed_in(supervisor).get("/desk/").content.decode()
        assert f'id="row-desk-breached-{late.pk}"' not in html


def test_the_desk_needs_the_same_queries_for_2_or_8_requests(
    ctx: Ctx, supervisor: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    client = signed_in(supervisor)
    pending_extension(ctx)
    pending_void(ctx)
    with CaptureQueriesContext(connection) as few:
        client.get("/desk/")
    for _i in range(3):
        pending_extension(ctx)
        pending_void(ctx)
    with django_assert_num_queries(len(few.captured_queries)):
        html = client.get("/desk/").content.decode()
    assert html.count('class="decide-form"') == 8


# -- the grid worker -------------------------------------------------------------------------
def test_the_worker_sees_my_grids_with_counts_and_the_cases_to_verify(
    drive: Drive, west_case: Case, east_worker: User, grid_worker: User
) -> None:
    handled = drive(Status.HANDLED)
    drive(Status.DISPATCHED)
    html = signed_in(east_worker).get("/field/").content.decode()
    assert "丙社区第1网格" in html
    assert re.search(r"<b>2</b> 在办", html)
    assert re.search(r"<b>1</b> 待核查", html)
    assert f'href="/field/verify/{handled.pk}/"' in html
    west = signed_in(grid_worker).get("/field/").content.decode()
    assert "甲社区第1网格" in west
    assert f"/field/verify/{handled.pk}/" not in west
    assert signed_in(grid_worker).get(f"/field/verify/{handled.pk}/").status_code == 404


def test_a_verified_case_waiting_to_be_closed_is_no_longer_the_workers_to_verify(
    drive: Drive, east_worker: User, settings: Settings
) -> None:
    settings.CIVICGRID_CLOSE_ON_VERIFY = False
    verified = services.verify_case(case=drive(Status.HANDLED), actor=east_worker, passed=True)
    assert verified.status == Status.HANDLED
    html = signed_in(east_worker).get("/field/").content.decode()
    assert re.search(r"<b>1</b> 在办", html)
    assert re.search(r"<b>0</b> 待核查", html)
    assert f"/field/verify/{verified.pk}/" not in html
    drive(Status.HANDLED)
    html = signed_in(east_worker).get("/field/").content.decode()
    assert re.search(r"<b>1</b> 待核查", html)


def test_the_worker_compares_and_passes_with_a_photo(
    drive: Drive, unit_handler: User, east_worker: User
) -> None:
    case = drive(Status.IN_PROGRESS)
    case = services.handle_case(
        case=case, actor=unit_handler, result="已清理完毕", photos=[photo("after.jpg")]
    )
    client = signed_in(east_worker)
    page = client.get(f"/field/verify/{case.pk}/").content.decode()
    assert "已清理完毕" in page
    assert 'class="compare-side compare-after"' in page
    assert page.count("?thumbnail=true") == 1  # the unit's after-photo
    assert 'capture="environment"' in page
    response = client.post(
        f"/field/verify/{case.pk}/",
        {"version": case.version, "verdict": "pass", "note": "现场已恢复", "photos": [photo()]},
    )
    assert response.status_code == 302
    assert response["Location"] == "/field/"
    assert Case.objects.get(pk=case.pk).status == Status.CLOSED
    assert Attachment.objects.filter(case=case, kind=AttachmentKind.VERIFICATION).count() == 1
    assert "核查通过" in client.get("/field/").content.decode()


def test_failing_a_verification_needs_a_note_and_refuses_a_bad_photo(
    drive: Drive, east_worker: User
) -> None:
    case = drive(Status.HANDLED)
    client = signed_in(east_worker)
    url = f"/field/verify/{case.pk}/"
    response = client.post(url, {"version": case.version, "verdict": "fail", "note": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'field field-note has-error">.*须填写理由', html, re.S)
    bogus = SimpleUploadedFile("x.jpg", b"not an image", content_type="image/jpeg")
    response = client.post(
        url, {"version": case.version, "verdict": "fail", "note": "仍有摊贩", "photos": [bogus]}
    )
    html = response.content.decode()
    assert re.search(r'field field-photos has-error">', html)
    assert "仍有摊贩" in html  # what was typed is kept
    assert Case.objects.get(pk=case.pk).status == Status.HANDLED
    client.post(url, {"version": case.version, "verdict": "fail", "note": "仍有摊贩"})
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    assert case.rework_count == 1


def test_three_taps_report_a_problem_with_the_phones_location(
    east_worker: User, tree: Tree
) -> None:
    client = signed_in(east_worker)
    page = client.get("/field/report/").content.decode()
    for name in ("暴露垃圾", "占道经营", "道路不洁", "井盖"):
        assert name in page
    assert 'capture="environment"' in page
    grid = tree["620103002001001"]
    response = client.post(
        "/field/report/",
        {
            "category": "SJ0102",
            "photos": [photo()],
            "lon": "103.826",
            "lat": "35.976",
            "grid": grid.pk,
        },
    )
    assert response.status_code == 302
    case = Case.objects.get(channel=Channel.GRID_WORKER)
    assert case.status == Status.FILED  # a grid worker's report is filed directly
    assert case.category.code == "SJ0102"
    assert case.grid_id == grid.pk
    assert (case.lon, case.lat) == pytest.approx((103.826, 35.976))
    assert "暴露垃圾" in case.description
    assert case.attachments.get().kind == AttachmentKind.BEFORE
    assert case.created_by == east_worker


def test_without_a_location_the_report_falls_back_to_the_grids_centre(
    east_worker: User, tree: Tree
) -> None:
    grid = tree["620103002001001"]
    signed_in(east_worker).post(
        "/field/report/",
        {"category": "SJ0502", "photos": [photo()], "lon": "", "lat": "", "grid": grid.pk},
    )
    case = Case.objects.get(channel=Channel.GRID_WORKER)
    assert (case.lon, case.lat) == pytest.approx((grid.centroid_lon, grid.centroid_lat))
    assert case.grid_id == grid.pk


def test_a_report_fixed_on_the_spot_goes_to_verification(east_worker: User, tree: Tree) -> None:
    grid = tree["620103002001001"]
    response = signed_in(east_worker).post(
        "/field/report/",
        {
            "category": "SJ0102",
            "photos": [photo("before.jpg")],
            "grid": grid.pk,
            "self_handle": "on",
            "result": "已当场清理",
            "after_photos": [photo("after.jpg")],
        },
    )
    assert response.status_code == 302
    case = Case.objects.get(channel=Channel.GRID_WORKER)
    assert case.status == Status.HANDLED
    assert case.events.filter(action=Action.SELF_HANDLE).exists()
    kinds = sorted(case.attachments.values_list("kind", flat=True))
    assert kinds == [AttachmentKind.AFTER, AttachmentKind.BEFORE]


def test_a_bad_report_shows_the_message_next_to_the_field_keeping_what_was_typed(
    east_worker: User, tree: Tree
) -> None:
    client = signed_in(east_worker)
    grid = tree["620103002001001"]
    no_tile = client.post(
        "/field/report/", {"photos": [photo()], "grid": grid.pk, "description": "桥下一堆垃圾"}
    )
    assert no_tile.status_code == 400
    html = no_tile.content.decode()
    assert re.search(r'step step-category has-error">.*请点选问题类别', html, re.S)
    assert "桥下一堆垃圾" in html
    no_photo = client.post("/field/report/", {"category": "SJ0102", "grid": grid.pk})
    html = no_photo.content.decode()
    assert re.search(r'step step-photo has-error">.*请拍摄或选择至少一张现场照片', html, re.S)
    assert 'value="SJ0102" checked' in html  # the tile stays picked
    no_result = client.post(
        "/field/report/",
        {"category": "SJ0102", "photos": [photo()], "grid": grid.pk, "self_handle": "on"},
    )
    assert "当场处理须填写处置结果" in no_result.content.decode()
    outside = client.post(
        "/field/report/",
        {"category": "SJ0102", "photos": [photo()], "grid": grid.pk, "lon": "104.5", "lat": "36.5"},
    )
    assert "不在辖区内" in outside.content.decode()
    assert not Case.objects.filter(channel=Channel.GRID_WORKER).exists()
    assert not Attachment.objects.exists()


def test_the_report_finds_other_categories_by_pinyin(east_worker: User) -> None:
    html = signed_in(east_worker).get("/field/report/categories/", {"q": "xgg"}).content.decode()
    assert "非法小广告" in html
    assert 'name="category" value="SJ0201"' in html


def test_the_field_page_needs_the_same_queries_for_1_or_6_tasks(
    drive: Drive, east_worker: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    drive(Status.HANDLED)
    client = signed_in(east_worker)
    with CaptureQueriesContext(connection) as few:
        client.get("/field/")
    for _i in range(5):
        drive(Status.HANDLED)
    with django_assert_num_queries(len(few.captured_queries)):
        html = client.get("/field/").content.decode()
    assert html.count('href="/field/verify/') == 6


# -- the overview ----------------------------------------------------------------------------
def test_the_overview_counts_the_open_cases_of_each_scope(
    drive: Drive,
    west_case: Case,
    community_staff: User,
    leader: User,
    dispatcher: User,
) -> None:
    drive(Status.FILED)
    drive(Status.DISPATCHED)
    drive(Status.CLOSED)  # closed: not counted

    def counted(user: User, query: str = "") -> tuple[str, str, set[str]]:
        html = signed_in(user).get(f"/overview/{query}").content.decode()
        total = re.search(r'data-count="total">(\d+)<', html)
        assert total is not None
        return total.group(1), html, set(numbers(html))

    total, html, listed = counted(leader)
    assert total == "3"
    assert len(listed) == 3
    assert re.search(r'data-status="filed">.*?<span class="bar-n">1</span>', html, re.S)
    assert re.search(r'data-status="new">.*?<span class="bar-n">1</span>', html, re.S)
    assert re.search(r'data-category="T0502">.*?<span class="bar-n">3</span>', html, re.S)
    total, html, listed = counted(community_staff)
    assert total == "1"
    assert listed == {west_case.number}
    assert "丙社区" not in html  # the picker offers only the user's subtree
    # The picker narrows counts, map and list to a subtree of the scope.
    east = re.search(r'href="\?grid=(\d+)"[^>]*>东街道<', counted(dispatcher)[1])
    assert east is not None
    total, html, listed = counted(dispatcher, f"?grid={east.group(1)}")
    assert total == "2"
    assert west_case.number not in listed
    config = re.search(r'id="overview-map-config"[^>]*>(.*?)</script>', html, re.S)
    assert config is not None
    assert config.group(1).count('"n":') == 2


def test_a_subtree_outside_the_scope_is_left_out(
    drive: Drive, west_case: Case, community_staff: User, tree: Tree
) -> None:
    drive(Status.FILED)
    response = signed_in(community_staff).get("/overview/", {"grid": tree.east.pk})
    html = response.content.decode()
    assert response.status_code == 200
    assert set(numbers(html)) == {west_case.number}
    assert "errorlist" in html  # the filter says the choice is not valid


def test_the_overview_filters_swap_counts_map_and_list_together(
    drive: Drive, west_case: Case, dispatcher: User
) -> None:
    drive(Status.FILED)
    response = signed_in(dispatcher).get(
        "/overview/", {"status": "new"}, headers={**HTMX, "HX-Target": "case-table"}
    )
    html = response.content.decode()
    assert response["HX-Retarget"] == "#overview-body"
    assert html.lstrip().startswith('<div id="overview-body"')
    assert 'data-count="total">1<' in html


def test_the_overview_needs_the_same_queries_for_3_or_15_cases(
    new_case: IntakeFactory, leader: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    client = signed_in(leader)
    for i in range(3):
        new_case(description=f"第{i}件")
    with CaptureQueriesContext(connection) as few:
        client.get("/overview/")
    for i in range(12):
        new_case(description=f"又一件{i}")
    with django_assert_num_queries(len(few.captured_queries)):
        html = client.get("/overview/").content.decode()
    assert 'data-count="total">15<' in html


def test_the_pages_speak_english_when_chosen(ctx: Ctx, supervisor: User, east_worker: User) -> None:
    pending_extension(ctx)
    client = signed_in(supervisor)
    client.cookies["django_language"] = "en"
    desk = client.get("/desk/").content.decode()
    assert "Supervisor desk" in desk
    assert "Breached today" in desk
    worker = signed_in(east_worker)
    worker.cookies["django_language"] = "en"
    assert "Tap the problem category" in worker.get("/field/report/").content.decode()


def test_a_fix_on_the_spot_is_all_or_nothing(east_worker: User, tree: Tree) -> None:
    client = signed_in(east_worker)
    grid = tree["620103002001001"]
    bogus = SimpleUploadedFile("after.jpg", b"not an image", content_type="image/jpeg")
    bad_photo = client.post(
        "/field/report/",
        {
            "category": "SJ0102",
            "photos": [photo()],
            "grid": grid.pk,
            "self_handle": "on",
            "result": "已清理",
            "after_photos": [bogus],
        },
    )
    assert bad_photo.status_code == 400
    # Somebody else's grid: only its own worker may fix a problem there on the spot.
    elsewhere = client.post(
        "/field/report/",
        {
            "category": "SJ0102",
            "photos": [photo()],
            "grid": grid.pk,
            "lon": str(WEST_POINT[0]),
            "lat": str(WEST_POINT[1]),
            "self_handle": "on",
            "result": "已清理",
        },
    )
    html = elsewhere.content.decode()
    assert re.search(r'field field-result has-error">.*只有该网格的网格员可以自处理', html, re.S)
    assert "已清理" in html
    assert not Case.objects.exists()
    assert not Attachment.objects.exists()

"""The case list, the case page and its actions, and the task badge, per persona.

Cases come from the shared fixtures (civicgrid/cases/tests/fixtures.py): the
hotline's cases lie in grid C1 of 东街道, served by 城管执法局东街道中队
(``city_unit``, 陈静 its handler); ``west_case`` lies in grid A1 of 甲社区.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases import selectors, services
from civicgrid.cases.access import visible_cases
from civicgrid.cases.models import (
    Case,
    Category,
    Channel,
    Status,
    Urgency,
)
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit, UnitKind
from civicgrid.grids.services import create_handling_unit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web.tests.case_pages import (
    HTMX,
    Ctx,
    Drive,
    numbers,
    pending_extension,
    signed_in,
)
from civicgrid.web.views import case_list

pytestmark = pytest.mark.django_db

#: What the case list page (the table and its filters) costs in queries, whatever the
#: page size: keep it fixed, so an N+1 shows here.
LIST_PAGE_QUERIES = 10


@pytest.fixture
def west_case(new_case: IntakeFactory) -> Case:
    return new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西街道路灯不亮")


# -- access ----------------------------------------------------------------------------------
def test_each_persona_sees_only_its_scope_on_the_list(
    drive: Drive,
    west_case: Case,
    dispatcher: User,
    community_staff: User,
    grid_worker: User,
    unit_handler: User,
    east_worker: User,
) -> None:
    filed = drive(Status.FILED)
    dispatched = drive(Status.DISPATCHED)
    everything = {west_case.number, filed.number, dispatched.number}
    seen = {
        user.username: set(numbers(signed_in(user).get("/cases/").content.decode()))
        for user in (dispatcher, community_staff, grid_worker, unit_handler, east_worker)
    }
    assert seen == {
        "wangmin": everything,
        "lihua": {west_case.number},  # 甲社区 only
        "zhaolei": {west_case.number},  # grid A1
        "chenjing": {dispatched.number},  # what was sent to the unit
        "wugang": {filed.number, dispatched.number},  # grid C1
    }


def test_assisting_units_see_each_case_once_on_the_list(
    new_case: IntakeFactory,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
    west_handler: User,
    dispatcher: User,
    tree: Tree,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    """Scoping by unit goes through EXISTS (no join, no DISTINCT): a case the user's
    units both lead and assist, or assist twice over, is one row."""
    led = new_case(description="主办")
    assisted = new_case(description="协办")
    neither = new_case(description="无关")
    third = create_handling_unit(
        code="W-3", name="西街道第三单位", kind=UnitKind.BUREAU, serves=tree.west
    )
    Membership.objects.create(user=west_handler, role=Role.UNIT_HANDLER, unit=third)
    Case.objects.filter(pk__in=[led.pk, assisted.pk, neither.pk]).update(lead_unit=city_unit)
    Case.objects.filter(pk=led.pk).update(lead_unit=west_unit)
    led.assisting_units.set([west_unit, third])
    assisted.assisting_units.set([west_unit, third, city_unit])
    neither.assisting_units.set([city_unit])
    expected = [assisted.number, led.number]
    assert list(visible_cases(west_handler).values_list("number", flat=True)) == expected
    client = signed_in(west_handler)
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        assert numbers(client.get("/cases/").content.decode()) == expected
    # The unit filter, for a user seeing every case, likewise.
    assert numbers(
        signed_in(dispatcher).get("/cases/", {"unit": west_unit.pk}).content.decode()
    ) == (expected)
    assert numbers(signed_in(dispatcher).get("/cases/", {"unit": third.pk}).content.decode()) == (
        expected
    )


def test_the_case_page_is_404_outside_the_scope_and_for_outsiders(
    drive: Drive,
    west_case: Case,
    community_staff: User,
    unit_handler: User,
    outsider: User,
    dispatcher: User,
) -> None:
    filed = drive(Status.FILED)
    url = reverse("case-detail", args=[filed.pk])
    assert signed_in(dispatcher).get(url).status_code == 200
    assert signed_in(community_staff).get(url).status_code == 404  # east, not 甲社区
    assert signed_in(unit_handler).get(url).status_code == 404  # not sent to the unit yet
    assert signed_in(community_staff).get(f"/cases/{west_case.pk}/").status_code == 200
    assert signed_in(outsider).get(url).status_code == 404
    assert signed_in(outsider).get("/cases/").status_code == 404
    assert signed_in(dispatcher).get("/cases/999999/").status_code == 404
    posted = signed_in(outsider).post(
        f"{url}actions/accept/", {"version": filed.version}, headers=HTMX
    )
    assert posted.status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


def test_the_list_masks_requesters_and_links_each_case(drive: Drive, dispatcher: User) -> None:
    case = drive(Status.FILED)
    html = signed_in(dispatcher).get("/cases/").content.decode()
    assert "张**" in html
    assert "139****5678" in html
    assert "张先生" not in html
    assert "13912345678" not in html
    assert f'href="/cases/{case.pk}/"' in html


# -- filters and pages ----------------------------------------------------------------------
@pytest.fixture
def assorted(
    new_case: IntakeFactory,
    drive: Drive,
    category: Category,
    west_unit: HandlingUnit,
    dispatcher: User,
) -> dict[str, Case]:
    """Cases differing in one thing each."""
    other = Category.objects.create(
        code="T0601", name="乱堆物料（测试）", kind=category.kind, parent=category.parent
    )
    elsewhere = Category.objects.create(code="T07", name="园林（测试）", kind=category.kind)
    tree_minor = Category.objects.create(
        code="T0701", name="树木倒伏（测试）", kind=category.kind, parent=elsewhere
    )
    west = new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西边井盖松动")
    west = services.accept_case(case=west, actor=west.created_by)  # type: ignore[arg-type]
    west = services.dispatch_case(case=west, actor=dispatcher, unit=west_unit)
    return {
        "plain": new_case(),
        "other_minor": new_case(category=other, description="路边乱堆物料"),
        "tree": new_case(category=tree_minor, description="大风吹倒行道树"),
        "web": new_case(channel=Channel.WEB, description="网上反映噪音扰民"),
        "filed": drive(Status.FILED),
        "west": west,
        "old": new_case(
            description="上个月的旧案",
            received_at=timezone.now() - timedelta(days=40),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": ["filed"]}, {"filed"}),
        ({"status": ["filed", "dispatched"]}, {"filed", "west"}),
        ({"category": "T0502"}, {"plain", "web", "filed", "west", "old"}),
        ({"category": "T05"}, {"plain", "other_minor", "web", "filed", "west", "old"}),
        ({"category": "T07"}, {"tree"}),
        ({"channel": "web"}, {"web"}),
        ({"q": "噪音"}, {"web"}),
        ({"q": "旧案", "status": ["new"]}, {"old"}),
    ],
)
def test_the_filters_narrow_the_list(
    assorted: dict[str, Case],
    dispatcher: User,
    query: dict[str, Any],
    expected: set[str],
) -> None:
    html = signed_in(dispatcher).get("/cases/", query).content.decode()
    by_number = {c.number: name for name, c in assorted.items()}
    assert {by_number[n] for n in numbers(html)} == expected


def test_unit_grid_overdue_and_date_filters(
    assorted: dict[str, Case],
    dispatcher: User,
    tree: Tree,
    west_unit: HandlingUnit,
) -> None:
    client = signed_in(dispatcher)
    by_number = {c.number: name for name, c in assorted.items()}

    def names(**query: Any) -> set[str]:
        return {by_number[n] for n in numbers(client.get("/cases/", query).content.decode())}

    assert names(unit=west_unit.pk) == {"west"}
    assert names(grid=tree.west.pk) == {"west"}
    assert names(grid=tree.community_a.pk) == {"west"}
    assert names(grid=tree.east.pk) == set(assorted) - {"west"}
    Case.objects.filter(pk=assorted["tree"].pk).update(is_overdue=True)
    assert names(overdue="on") == {"tree"}
    today = timezone.localdate()
    assert names(received_to=str(today - timedelta(days=30))) == {"old"}
    assert "old" not in names(received_from=str(today - timedelta(days=1)))
    assert "old" in names(received_from=str(today - timedelta(days=41)), received_to=str(today))


def test_a_bad_filter_is_shown_next_to_its_field_and_left_out(
    assorted: dict[str, Case], dispatcher: User, tree: Tree
) -> None:
    response = signed_in(dispatcher).get(
        "/cases/", {"status": ["nope"], "grid": "999999", "q": "旧案"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="errorlist') == 2
    assert 'value="旧案"' in html  # what was typed stays
    assert numbers(html) == [assorted["old"].number]  # the valid filter still applies


def test_the_grid_filter_offers_only_the_users_subdistricts_and_communities(
    community_staff: User, dispatcher: User, tree: Tree
) -> None:
    district = signed_in(dispatcher).get("/cases/").content.decode()
    assert "西街道" in district
    assert "丁社区" in district
    assert "甲社区第1网格" not in district
    community = signed_in(community_staff).get("/cases/").content.decode()
    assert "甲社区第1网格" in community  # a community's own grids
    assert "乙社区" not in community
    # Someone else's community is refused as a filter.
    refused = signed_in(community_staff).get("/cases/", {"grid": tree.community_b.pk})
    assert "errorlist" in refused.content.decode()


def test_keyset_pages_go_forward_and_back_with_constant_queries(
    new_case: IntakeFactory,
    dispatcher: User,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    monkeypatch.setattr(case_list, "PAGE_SIZE", 3)
    cases = [new_case(description=f"第{i}件") for i in range(8)]
    newest_first = [c.number for c in reversed(cases)]
    client = signed_in(dispatcher)
    pages: list[list[str]] = []
    url = "/cases/?status=new"
    while url:
        with django_assert_max_num_queries(10):
            html = client.get(url).content.decode()
        pages.append(numbers(html))
        found = re.search(r'rel="next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:8]]
    # And back from the last page, the filters kept.
    prev = re.search(r'rel="prev" href="([^"]+)"', html)
    assert prev is not None
    assert "status=new" in prev.group(1)
    back = client.get(prev.group(1).replace("&amp;", "&")).content.decode()
    assert numbers(back) == newest_first[3:6]
    assert 'rel="prev"' in back
    assert 'rel="next"' in back
    # A new case arriving meanwhile does not shift the pages already reached.
    new_case(description="新来的")
    again = client.get(prev.group(1).replace("&amp;", "&")).content.decode()
    assert numbers(again) == newest_first[3:6]
    # A broken cursor falls back to the first page.
    broken = client.get("/cases/", {"after": "!!"}).content.decode()
    assert len(numbers(broken)) == 3


def test_the_list_needs_the_same_queries_for_3_or_30_cases(
    new_case: IntakeFactory,
    dispatcher: User,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    client = signed_in(dispatcher)
    for i in range(3):
        new_case(description=f"第{i}件")
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        assert len(numbers(client.get("/cases/").content.decode())) == 3
    for i in range(28):
        new_case(description=f"又一件{i}")
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        assert len(numbers(client.get("/cases/").content.decode())) == 30
    # The urgent order and the next page cost the same.
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        html = client.get("/cases/", {"sort": "urgent"}).content.decode()
    found = re.search(r'rel="next" href="([^"]+)"', html)
    assert found is not None
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        assert len(numbers(client.get(found.group(1).replace("&amp;", "&")).content.decode())) == 1


def test_the_urgent_sort_puts_the_most_urgent_and_earliest_due_first(
    new_case: IntakeFactory, dispatcher: User
) -> None:
    normal = new_case(description="一般")
    urgent = new_case(description="紧急", urgency=Urgency.URGENT)
    emergency = new_case(description="特急", urgency=Urgency.EMERGENCY)
    parked = new_case(description="无时限")
    Case.objects.filter(pk=parked.pk).update(due_at=None, urgency=Urgency.EMERGENCY)
    html = signed_in(dispatcher).get("/cases/", {"sort": "urgent"}).content.decode()
    assert numbers(html) == [emergency.number, parked.number, urgent.number, normal.number]
    page = selectors.page_cases(Case.objects.all(), sort=selectors.URGENT, limit=2)
    rest = selectors.page_cases(
        Case.objects.all(), sort=selectors.URGENT, after=page.next_cursor or "", limit=2
    )
    assert [c.pk for c in page.items + rest.items] == [
        emergency.pk,
        parked.pk,
        urgent.pk,
        normal.pk,
    ]
    back = selectors.page_cases(
        Case.objects.all(), sort=selectors.URGENT, before=rest.prev_cursor or "", limit=2
    )
    assert [c.pk for c in back.items] == [emergency.pk, parked.pk]
    assert back.prev_cursor is None


def test_htmx_filter_changes_get_the_table_alone(drive: Drive, dispatcher: User) -> None:
    drive(Status.FILED)
    full = signed_in(dispatcher).get("/cases/").content.decode()
    assert 'hx-get="/cases/"' in full
    assert 'hx-push-url="true"' in full
    assert 'hx-target="#case-table"' in full
    fragment = signed_in(dispatcher).get(
        "/cases/", {"status": "filed"}, headers={**HTMX, "HX-Target": "case-table"}
    )
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="case-table"')
    assert "<html" not in html
    assert len(numbers(html)) == 1


# -- deadline colours ------------------------------------------------------------------------
@pytest.mark.parametrize(("share", "colour"), [(0.5, "green"), (0.8, "yellow"), (1.2, "red")])
def test_rows_and_the_case_page_show_the_deadline_colour(
    drive: Drive,
    dispatcher: User,
    share: float,
    colour: str,
) -> None:
    case = drive(Status.FILED)
    stage = case.deadlines.get(finished_at__isnull=True)
    assert case.due_at == stage.due_at
    at = stage.started_at + (stage.due_at - stage.started_at) * share
    client = signed_in(dispatcher)
    with time_machine.travel(at, tick=False):
        listed = client.get("/cases/").content.decode()
        page = client.get(f"/cases/{case.pk}/").content.decode()
    assert f'<tr class="case-row dl-{colour}" data-case="{case.pk}">' in listed
    assert f'<span class="deadline dl-{colour}"' in listed
    assert f'class="case-deadline deadline dl-{colour}"' in page


def test_a_case_without_a_running_stage_has_no_colour(drive: Drive, dispatcher: User) -> None:
    case = drive(Status.CLOSED)
    listed = signed_in(dispatcher).get("/cases/").content.decode()
    assert f'<tr class="case-row" data-case="{case.pk}">' in listed
    assert selectors.deadline_state(started_at=None, due_at=None) == ""


# -- my tasks and the badge ---------------------------------------------------------------------
@pytest.fixture
def workload(request: pytest.FixtureRequest) -> dict[str, Case]:
    """One case in each waiting state, all in grid C1 and sent to 城管执法局东街道中队."""
    ctx = Ctx(request)
    return {
        "new": ctx.drive(Status.NEW),
        "filed": ctx.drive(Status.FILED),
        "filed2": ctx.drive(Status.FILED),
        "returned": ctx.drive(Status.RETURNED),
        "dispatched": ctx.drive(Status.DISPATCHED),
        "in_progress": ctx.drive(Status.IN_PROGRESS),
        "extension": pending_extension(ctx),
        "handled": ctx.drive(Status.HANDLED),
        "closed": ctx.drive(Status.CLOSED),
    }


def test_my_tasks_counts_what_each_persona_must_do_now(
    request: pytest.FixtureRequest,
    workload: dict[str, Case],
    west_case: Case,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    ctx = Ctx(request)
    expected = {
        "call_taker": {"accept": 2, "overdue": 0},  # the west case is new too
        "dispatcher": {"dispatch": 2, "returned": 1, "overdue": 0},
        "unit_handler": {"acknowledge": 1, "handle": 2, "overdue": 0},
        "supervisor": {"approve": 1, "close": 0, "overdue": 0},
        "east_worker": {"verify": 1, "overdue": 0},
        "grid_worker": {"verify": 0, "overdue": 0},
        "community_staff": {"overdue": 0},
        "leader": {"overdue": 0},
    }
    for persona, counts in expected.items():
        user: User = User.objects.get(pk=getattr(ctx, persona).pk)  # no cached memberships
        with django_assert_max_num_queries(2):
            tasks = selectors.my_tasks(user)
        assert tasks.counts == counts, persona
        assert tasks.total == sum(counts.values()), persona
        listed = set(selectors.task_cases(user).values_list("pk", flat=True))
        assert len(listed) == tasks.total
        assert listed <= set(visible_cases(user).values_list("pk", flat=True))
    assert selectors.my_tasks(ctx.outsider).total == 0


def test_overdue_stages_count_for_everyone_in_scope(
    request: pytest.FixtureRequest, workload: dict[str, Case]
) -> None:
    ctx = Ctx(request)
    latest = (
        Case.objects.exclude(due_at=None).order_by("-due_at").values_list("due_at", flat=True)[0]
    )
    assert latest is not None
    with time_machine.travel(latest + timedelta(minutes=1), tick=False):
        leader = selectors.my_tasks(ctx.leader)
        dispatcher = selectors.my_tasks(ctx.dispatcher)
        unit = selectors.my_tasks(ctx.unit_handler)
        west = selectors.my_tasks(ctx.community_staff)
    running = Case.objects.exclude(due_at=None).count()
    assert leader.counts == {"overdue": running}
    assert dispatcher.counts["overdue"] == running
    assert dispatcher.total == running  # the filed and returned ones are overdue too
    # All it leads: returned, dispatched, in progress, extension asked, handled.
    assert unit.counts["overdue"] == 5
    assert west.counts == {"overdue": 0}


def test_the_badge_shows_the_count_and_polls(
    workload: dict[str, Case],
    dispatcher: User,
    outsider: User,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    client = signed_in(dispatcher)
    home = client.get("/").content.decode()
    assert 'hx-get="/notifications/badge/"' in home
    assert 'hx-trigger="load, every 30s, tasks-changed from:body"' in home
    with django_assert_max_num_queries(4):
        badge = client.get("/notifications/badge/", headers=HTMX)
    html = badge.content.decode()
    assert 'data-count="3"' in html
    assert 'hx-trigger="every 30s, tasks-changed from:body"' in html
    assert "待派遣 2" in html
    assert "已回退待改派 1" in html
    # No badge, and no polling, for who has nothing to do here.
    assert signed_in(outsider).get("/notifications/badge/").status_code == 286
    assert Client().get("/notifications/badge/").status_code == 286
    assert 'id="task-badge"' not in signed_in(outsider).get("/").content.decode()


def test_the_task_list_shows_my_cases_by_kind(
    workload: dict[str, Case],
    unit_handler: User,
    outsider: User,
) -> None:
    client = signed_in(unit_handler)
    html = client.get("/notifications/").content.decode()
    assert set(numbers(html)) == {
        workload[k].number for k in ("dispatched", "in_progress", "extension")
    }
    assert "待签收 <span" in html
    only = client.get("/notifications/acknowledge/").content.decode()
    assert numbers(only) == [workload["dispatched"].number]
    # The filters keep to the kind's page.
    assert 'hx-get="/notifications/acknowledge/"' in only
    assert client.get("/notifications/nope/").status_code == 404
    assert signed_in(outsider).get("/notifications/").status_code == 404


def test_the_nav_lists_the_pages_of_the_users_roles(
    dispatcher: User, outsider: User, drive: Drive
) -> None:
    case = drive(Status.FILED)
    html = signed_in(dispatcher).get(f"/cases/{case.pk}/").content.decode()
    nav = html[html.index('<nav class="mainnav"') : html.index("</nav>")]
    assert re.findall(r">([^<>]+)</a>", nav) == [
        "工作台",
        "热线受理",
        "派遣队列",
        "案件",
        "网格地图",
    ]
    assert 'href="/cases/" class="active" aria-current="page"' in nav
    outsider_nav = signed_in(outsider).get("/").content.decode()
    assert 'href="/cases/"' not in outsider_nav


def test_the_pages_speak_english_when_chosen(drive: Drive, dispatcher: User) -> None:
    case = drive(Status.FILED)
    client = signed_in(dispatcher)
    client.cookies["django_language"] = "en"
    listed = client.get("/cases/").content.decode()
    assert "Overdue only" in listed
    assert "Newest first" in listed
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "What you can do" in page
    assert "Suggested: 城管执法局东街道中队 (by the routing rules)" in page
    badge = client.get("/notifications/badge/").content.decode()
    assert "Tasks" in badge

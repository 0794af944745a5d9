"""Every page of ``civicgrid/web/urls.py`` is tested for access: who gets it, and that
everyone else (an outsider above all) gets the same 404 as for a page that does not
exist; and the pages that list cases show each persona only its own scope.

``PAGES`` says, for every page one opens (GET), who may open it; ``ELSEWHERE`` names
the tests that check the pages one only posts to (or that need a citizen's proof).
A page added to the URLconf without a line in one of them fails
``test_every_page_has_an_access_rule``.

The personas (civicgrid/grids/tests/fixtures.py, civicgrid/cases/tests/fixtures.py):
the district's call-taker, dispatcher, supervisor and leader; the east unit's handler;
the grid workers of C1 (east) and A1 (west); 甲社区's staff; an outsider with no
position. Added here: a dispatcher, a supervisor and a call-taker of 西街道 only.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, resolve, reverse

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Category, Status
from civicgrid.cases.tests.fixtures import EAST_POINT, WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.web import urls as web_urls
from civicgrid.web.tests.case_pages import HTMX, Drive, numbers, signed_in

pytestmark = pytest.mark.django_db

PERSONAS = [
    "call_taker",
    "dispatcher",
    "supervisor",
    "leader",
    "unit_handler",
    "east_worker",
    "grid_worker",
    "community_staff",
    "outsider",
]
SIGNED_IN = frozenset(PERSONAS)
STAFF = SIGNED_IN - {"outsider"}
INTAKE = frozenset({"call_taker", "dispatcher", "supervisor"})
WORKERS = frozenset({"east_worker", "grid_worker"})
GRID_SCOPED = STAFF - {"unit_handler"}

#: url name → (the address, who gets it; anyone else signed in gets 404).
#: ``None``: public, no account needed.
PAGES: dict[str, tuple[str, frozenset[str] | None]] = {
    "home": ("/", SIGNED_IN),
    "grid-map": ("/map/", SIGNED_IN),
    "password_change": ("/password/", SIGNED_IN),
    "password_change_done": ("/password/done/", SIGNED_IN),
    "case-list": ("/cases/", STAFF),
    "notifications": ("/notifications/", STAFF),
    "notifications-kind": ("/notifications/overdue/", STAFF),
    "intake": ("/intake/", INTAKE),
    "intake-categories": ("/intake/categories/?category_q=zdjy", INTAKE),
    "intake-places": ("/intake/places/?address=丙社区", INTAKE),
    "intake-locate": ("/intake/locate/?lon=103.825&lat=35.975", INTAKE),
    "intake-duplicates": ("/intake/duplicates/", INTAKE),
    "dispatch-queue": ("/dispatch/", frozenset({"dispatcher", "supervisor"})),
    "inbox": ("/inbox/", frozenset({"unit_handler"})),
    "desk": ("/desk/", frozenset({"supervisor"})),
    "field-home": ("/field/", WORKERS),
    "field-report": ("/field/report/", WORKERS),
    "field-report-search": ("/field/report/categories/?q=lj", WORKERS),
    "overview": ("/overview/", GRID_SCOPED),
    "login": ("/login/", None),
    "portal-report": ("/report/", None),
    "portal-categories": ("/report/categories/", None),
    "portal-category-search": ("/report/categories/search/?q=zd", None),
    "portal-outline": ("/report/outline.json", None),
    "portal-track": ("/track/", None),
}

#: Pages tested for access elsewhere: posted to, about one case, or the citizen's own.
ELSEWHERE = {
    "logout": "test_pages.py::test_signing_out_by_get_is_refused (POST only)",
    "case-detail": "test_the_case_page_is_for_those_whose_scope_holds_the_case (here)",
    "case-action": "test_case_actions_are_404_outside_the_scope (here)",
    "notifications-badge": "test_cases_pages.py::test_the_badge_shows_the_count_and_polls (286)",
    "dispatch-bulk": "test_a_subdistrict_dispatcher_has_only_its_cases_in_the_queue (here)",
    "dispatch-case": "test_a_subdistrict_dispatcher_has_only_its_cases_in_the_queue (here)",
    "inbox-action": "test_role_pages.py::test_row_actions_are_404_for_others_and_...",
    "desk-action": "test_a_subdistrict_supervisor_decides_only_on_its_cases (here)",
    "field-verify": "test_the_verification_page_is_the_grid_workers_of_the_case (here)",
    "portal-report-done": "test_portal.py::test_the_done_page_shows_only_the_browsers_own_report",
    "portal-case": "test_portal.py::test_the_case_page_asks_again_without_proof_or_after_a_while",
    "portal-rate": "test_portal.py::test_the_rating_form_refuses_bad_input_and_an_open_case",
    "portal-photo": "test_portal.py::test_photos_are_served_only_to_a_browser_that_proved_...",
    "portal-photo-thumb": "test_portal.py::test_photos_are_served_only_to_a_browser_that_...",
}


def _people(request: pytest.FixtureRequest) -> dict[str, User]:
    return {name: request.getfixturevalue(name) for name in PERSONAS}


def _member(username: str, role: str, tree: Tree) -> User:
    user = User.objects.create_user(username=username, password=None, display_name=username)
    Membership.objects.create(user=user, role=role, grid=tree.west)
    return user


def test_every_page_has_an_access_rule() -> None:
    names = {
        p.name for p in web_urls.urlpatterns if isinstance(p, URLPattern) and p.name is not None
    }
    assert names == set(PAGES) | set(ELSEWHERE)
    assert not set(PAGES) & set(ELSEWHERE)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_opens_for_its_people_and_is_404_for_everyone_else(
    name: str, request: pytest.FixtureRequest, tree: Tree, category: Category
) -> None:
    url, who = PAGES[name]
    assert resolve(url.split("?")[0]).url_name == name
    people = _people(request)
    codes = {username: signed_in(user).get(url).status_code for username, user in people.items()}
    if who is None:
        assert set(codes.values()) == {200}, codes
        assert Client().get(url).status_code == 200
        return
    assert {u for u, code in codes.items() if code == 200} == who, codes
    assert {code for u, code in codes.items() if u not in who} <= {404}, codes
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


def test_the_case_page_is_for_those_whose_scope_holds_the_case(
    request: pytest.FixtureRequest, drive: Drive, new_case: IntakeFactory
) -> None:
    people = _people(request)
    east = drive(Status.DISPATCHED)
    west = new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西街道路灯不亮")

    def who(case: Case) -> set[str]:
        url = f"/cases/{case.pk}/"
        codes = {name: signed_in(user).get(url).status_code for name, user in people.items()}
        assert set(codes.values()) <= {200, 404}, codes
        return {name for name, code in codes.items() if code == 200}

    district = {"call_taker", "dispatcher", "supervisor", "leader"}
    assert who(east) == district | {"unit_handler", "east_worker"}
    assert who(west) == district | {"grid_worker", "community_staff"}
    assert signed_in(people["dispatcher"]).get("/cases/999999/").status_code == 404


def test_case_actions_are_404_outside_the_scope(
    request: pytest.FixtureRequest, drive: Drive, city_unit: HandlingUnit
) -> None:
    people = _people(request)
    case = drive(Status.FILED)
    post = {"version": case.version, "unit": city_unit.pk}
    for name in ("grid_worker", "community_staff", "unit_handler", "outsider"):
        client = signed_in(people[name])
        response = client.post(f"/cases/{case.pk}/actions/dispatch/", post, headers=HTMX)
        assert response.status_code == 404, name
    assert Case.objects.get(pk=case.pk).version == case.version
    allowed = signed_in(people["dispatcher"]).post(
        f"/cases/{case.pk}/actions/dispatch/", post, headers=HTMX
    )
    assert allowed.status_code == 200
    assert Case.objects.get(pk=case.pk).status == Status.DISPATCHED


def test_the_verification_page_is_the_grid_workers_of_the_case(
    request: pytest.FixtureRequest, drive: Drive
) -> None:
    people = _people(request)
    case = drive(Status.HANDLED)
    url = f"/field/verify/{case.pk}/"
    codes = {name: signed_in(user).get(url).status_code for name, user in people.items()}
    assert {name for name, code in codes.items() if code == 200} == {"east_worker"}
    assert {code for name, code in codes.items() if name != "east_worker"} == {404}
    posted = signed_in(people["grid_worker"]).post(
        url, {"version": case.version, "verdict": "pass"}
    )
    assert posted.status_code == 404
    assert Case.objects.get(pk=case.pk).status == Status.HANDLED


# -- scope: a subdistrict's staff see only the subdistrict ---------------------------------
@pytest.fixture
def west_case(new_case: IntakeFactory) -> Case:
    return new_case(lon=WEST_POINT[0], lat=WEST_POINT[1], description="西街道小区门口垃圾满溢")


def test_a_subdistrict_dispatcher_has_only_its_cases_in_the_queue(
    tree: Tree,
    drive: Drive,
    west_case: Case,
    call_taker: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> None:
    west_dispatcher = _member("west-dispatcher", Role.DISPATCHER, tree)
    east = drive(Status.FILED)
    west = services.accept_case(case=west_case, actor=call_taker)
    client = signed_in(west_dispatcher)
    assert numbers(client.get("/dispatch/").content.decode()) == [west.number]
    one = client.post(f"/dispatch/{east.pk}/", {"version": east.version, "unit": city_unit.pk})
    assert one.status_code == 404
    bulk = client.post(
        "/dispatch/bulk/", {"unit": west_unit.pk, "case": [east.pk, west.pk]}, follow=True
    )
    html = bulk.content.decode()
    assert f"已派遣 1 件至 西街道办事处：{west.number}" in html
    assert f"#{east.pk} 未派遣：不存在或不在您的权限范围内" in html
    assert Case.objects.get(pk=east.pk).status == Status.FILED
    assert Case.objects.get(pk=west.pk).status == Status.DISPATCHED


def test_a_subdistrict_supervisor_decides_only_on_its_cases(
    tree: Tree, drive: Drive, west_case: Case, call_taker: User
) -> None:
    west_supervisor = _member("west-supervisor", Role.SUPERVISOR, tree)
    east = drive(Status.FILED)
    services.request_void(case=east, actor=call_taker, reason="重复登记")
    west = services.accept_case(case=west_case, actor=call_taker)
    services.request_void(case=west, actor=call_taker, reason="市民撤诉")
    client = signed_in(west_supervisor)
    html = client.get("/desk/").content.decode()
    assert f'id="row-desk-approval-{west.pk}"' in html
    assert f'id="row-desk-approval-{east.pk}"' not in html
    east = Case.objects.get(pk=east.pk)
    decided = client.post(
        f"/desk/{east.pk}/decide_void/",
        {"version": east.version, "decision": "approve", "what": "approval"},
        headers=HTMX,
    )
    assert decided.status_code == 404
    assert Case.objects.get(pk=east.pk).status == Status.FILED


def test_my_tasks_list_only_the_cases_of_my_scope(
    tree: Tree, new_case: IntakeFactory, west_case: Case
) -> None:
    west_call_taker = _member("west-call-taker", Role.CALL_TAKER, tree)
    east = new_case(description="东街道占道经营")
    html = signed_in(west_call_taker).get("/notifications/accept/").content.decode()
    assert numbers(html) == [west_case.number]
    assert east.number not in html
    badge = signed_in(west_call_taker).get("/notifications/badge/").content.decode()
    assert 'data-count="1"' in badge


def test_possible_duplicates_are_only_those_the_call_taker_may_see(
    tree: Tree, category: Category, new_case: IntakeFactory, call_taker: User
) -> None:
    west_call_taker = _member("west-call-taker", Role.CALL_TAKER, tree)
    east = new_case(description="桥下环岛占道摆摊")
    near: dict[str, str] = {
        "lon": str(EAST_POINT[0] + 0.0003),
        "lat": str(EAST_POINT[1]),
        "crs": "wgs84",
        "category": east.category.code,
    }

    def seen(user: User) -> str:
        return signed_in(user).get("/intake/duplicates/", near, headers=HTMX).content.decode()

    assert east.number in seen(call_taker)
    assert east.number not in seen(west_call_taker)

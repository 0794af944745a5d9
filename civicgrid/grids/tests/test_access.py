"""Who sees which grids and units: each persona sees its subtree, nobody more."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids.access import (
    get_grid_for_user,
    is_platform_admin,
    scope_roots,
    visible_grids,
    visible_units,
)
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.grids.tests.fixtures import (
    COMMUNITY_A,
    DISTRICT,
    EAST,
    GRID_A1,
    GRID_A2,
    Tree,
)

pytestmark = pytest.mark.django_db


def codes(user: User | AnonymousUser) -> set[str]:
    return set(visible_grids(user).values_list("code", flat=True))  # type: ignore[arg-type]


def test_the_dispatcher_sees_the_whole_district(tree: Tree, dispatcher: User) -> None:
    assert codes(dispatcher) == set(tree.grids)


def test_community_staff_see_their_community_and_its_grids_only(
    tree: Tree, community_staff: User
) -> None:
    assert codes(community_staff) == {COMMUNITY_A, GRID_A1, GRID_A2}


def test_community_a_staff_never_see_community_b(tree: Tree, community_staff: User) -> None:
    in_b = Grid.objects.in_subtree(tree.community_b)
    assert in_b.count() == 3
    for grid in in_b:
        assert grid.code not in codes(community_staff)
        with pytest.raises(Http404):
            get_grid_for_user(community_staff, grid.pk)


def test_community_staff_do_not_see_their_ancestors(tree: Tree, community_staff: User) -> None:
    for grid in (tree.district, tree.west):
        with pytest.raises(Http404):
            get_grid_for_user(community_staff, grid.pk)


def test_the_grid_worker_sees_only_their_grid(tree: Tree, grid_worker: User) -> None:
    assert codes(grid_worker) == {GRID_A1}
    assert get_grid_for_user(grid_worker, tree.grid_a1.pk) == tree.grid_a1
    with pytest.raises(Http404):
        get_grid_for_user(grid_worker, tree[GRID_A2].pk)


def test_a_worker_on_two_grids_sees_both(tree: Tree, grid_worker: User) -> None:
    Membership.objects.create(user=grid_worker, role=Role.GRID_WORKER, grid=tree[GRID_A2])
    assert codes(grid_worker) == {GRID_A1, GRID_A2}


def test_the_unit_handler_sees_the_subtree_the_unit_serves(tree: Tree, unit_handler: User) -> None:
    expected = set(Grid.objects.in_subtree(tree.east).values_list("code", flat=True))
    assert len(expected) == 7
    assert codes(unit_handler) == expected
    assert [g.code for g in scope_roots(unit_handler)] == [EAST]


def test_the_outsider_sees_nothing(tree: Tree, outsider: User) -> None:
    assert codes(outsider) == set()
    for grid in tree.grids.values():
        with pytest.raises(Http404):
            get_grid_for_user(outsider, grid.pk)


def test_an_anonymous_visitor_sees_nothing(tree: Tree) -> None:
    assert codes(AnonymousUser()) == set()


def test_a_missing_grid_and_a_forbidden_one_look_the_same(tree: Tree, grid_worker: User) -> None:
    missing = Grid.objects.order_by("-pk").first().pk + 1000  # type: ignore[union-attr]
    with pytest.raises(Http404) as forbidden:
        get_grid_for_user(grid_worker, tree[GRID_A2].pk)
    with pytest.raises(Http404) as absent:
        get_grid_for_user(grid_worker, missing)
    assert str(forbidden.value) == str(absent.value)


def test_a_deactivated_membership_grants_nothing(tree: Tree, community_staff: User) -> None:
    Membership.objects.filter(user=community_staff).update(is_active=False)
    assert codes(community_staff) == set()


def test_an_inactive_account_sees_nothing(tree: Tree, dispatcher: User) -> None:
    dispatcher.is_active = False
    dispatcher.save()
    assert codes(dispatcher) == set()


def test_nested_scopes_collapse_to_the_outer_root(tree: Tree, community_staff: User) -> None:
    Membership.objects.create(user=community_staff, role=Role.GRID_WORKER, grid=tree.grid_a1)
    assert [g.code for g in scope_roots(community_staff)] == [COMMUNITY_A]


def test_the_superuser_sees_everything_and_may_write(tree: Tree, superuser: User) -> None:
    assert codes(superuser) == set(tree.grids)
    assert get_grid_for_user(superuser, tree.grid_a1.pk, write=True) == tree.grid_a1
    assert is_platform_admin(superuser)


def test_only_platform_admins_may_change_grids(tree: Tree, dispatcher: User) -> None:
    assert get_grid_for_user(dispatcher, tree.grid_a1.pk) == tree.grid_a1
    with pytest.raises(Http404):
        get_grid_for_user(dispatcher, tree.grid_a1.pk, write=True)
    Membership.objects.create(user=dispatcher, role=Role.ADMIN, grid=tree.district)
    assert get_grid_for_user(dispatcher, tree.grid_a1.pk, write=True) == tree.grid_a1


def test_units_are_visible_where_they_serve_and_to_their_own_staff(
    tree: Tree,
    city_unit: HandlingUnit,
    dispatcher: User,
    community_staff: User,
    unit_handler: User,
    outsider: User,
) -> None:
    assert visible_units(dispatcher) == [city_unit]  # serves inside the district
    assert visible_units(unit_handler) == [city_unit]
    assert visible_units(community_staff) == []  # serves the east, A is in the west
    assert visible_units(outsider) == []


def test_a_unit_serving_the_whole_district_is_visible_to_community_staff(
    tree: Tree, community_staff: User
) -> None:
    unit = HandlingUnit.objects.create(
        code="SW", name="区水务局", kind="bureau", serves=tree.district
    )
    assert visible_units(community_staff) == [unit]
    assert DISTRICT not in codes(community_staff)

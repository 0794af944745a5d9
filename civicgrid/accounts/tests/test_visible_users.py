"""Who sees which accounts: themselves, and staff placed inside their own subtrees."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from civicgrid.accounts.access import get_user_for_user, grid_workers_of, visible_users
from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids.tests.fixtures import GRID_A2, Tree

pytestmark = pytest.mark.django_db


@pytest.fixture
def everyone(
    dispatcher: User,
    community_staff: User,
    grid_worker: User,
    unit_handler: User,
    outsider: User,
    superuser: User,
) -> dict[str, User]:
    return {
        "dispatcher": dispatcher,
        "community_staff": community_staff,
        "grid_worker": grid_worker,
        "unit_handler": unit_handler,
        "outsider": outsider,
        "superuser": superuser,
    }


def names(viewer: User | AnonymousUser) -> set[str]:
    return set(visible_users(viewer).values_list("username", flat=True))  # type: ignore[arg-type]


def test_the_dispatcher_sees_everyone_placed_in_the_district(everyone: dict[str, User]) -> None:
    assert names(everyone["dispatcher"]) == {"wangmin", "lihua", "zhaolei", "chenjing"}


def test_community_staff_see_themselves_and_the_workers_of_their_community(
    everyone: dict[str, User],
) -> None:
    assert names(everyone["community_staff"]) == {"lihua", "zhaolei"}


def test_community_a_staff_do_not_see_a_worker_of_community_b(
    tree: Tree, everyone: dict[str, User]
) -> None:
    other = User.objects.create_user(username="qianfeng", password=None, display_name="钱峰")
    Membership.objects.create(user=other, role=Role.GRID_WORKER, grid=tree["620103001002001"])
    assert "qianfeng" not in names(everyone["community_staff"])
    assert "qianfeng" in names(everyone["dispatcher"])
    with pytest.raises(Http404):
        get_user_for_user(everyone["community_staff"], other.pk)


def test_the_grid_worker_sees_themselves_and_colleagues_on_the_same_grid(
    tree: Tree, everyone: dict[str, User]
) -> None:
    assert names(everyone["grid_worker"]) == {"zhaolei"}
    colleague = User.objects.create_user(username="sunli", password=None, display_name="孙丽")
    Membership.objects.create(user=colleague, role=Role.GRID_WORKER, grid=tree.grid_a1)
    neighbour = User.objects.create_user(username="zhouxin", password=None, display_name="周欣")
    Membership.objects.create(user=neighbour, role=Role.GRID_WORKER, grid=tree[GRID_A2])
    assert names(everyone["grid_worker"]) == {"zhaolei", "sunli"}


def test_the_unit_handler_sees_staff_inside_the_units_subtree(everyone: dict[str, User]) -> None:
    # The unit serves the east subdistrict; community A and grid A1 are in the west.
    assert names(everyone["unit_handler"]) == {"chenjing"}


def test_the_outsider_sees_only_themselves(everyone: dict[str, User]) -> None:
    assert names(everyone["outsider"]) == {"sunyue"}
    with pytest.raises(Http404):
        get_user_for_user(everyone["outsider"], everyone["dispatcher"].pk)


def test_an_anonymous_visitor_sees_nobody(everyone: dict[str, User]) -> None:
    assert names(AnonymousUser()) == set()


def test_the_superuser_sees_every_account(everyone: dict[str, User]) -> None:
    assert names(everyone["superuser"]) == set(User.objects.values_list("username", flat=True))


def test_only_platform_admins_may_change_accounts(everyone: dict[str, User]) -> None:
    dispatcher, worker = everyone["dispatcher"], everyone["grid_worker"]
    assert get_user_for_user(dispatcher, worker.pk) == worker
    with pytest.raises(Http404):
        get_user_for_user(dispatcher, worker.pk, write=True)
    assert get_user_for_user(everyone["superuser"], worker.pk, write=True) == worker


def test_a_user_with_two_memberships_in_scope_is_listed_once(
    tree: Tree, everyone: dict[str, User]
) -> None:
    Membership.objects.create(
        user=everyone["grid_worker"], role=Role.GRID_WORKER, grid=tree[GRID_A2]
    )
    usernames = list(visible_users(everyone["community_staff"]).values_list("username", flat=True))
    assert sorted(usernames) == ["lihua", "zhaolei"]


def test_grid_workers_of_a_grid_are_its_active_workers(
    tree: Tree, everyone: dict[str, User]
) -> None:
    assert list(grid_workers_of(tree.grid_a1)) == [everyone["grid_worker"]]
    Membership.objects.filter(user=everyone["grid_worker"]).update(is_active=False)
    assert list(grid_workers_of(tree.grid_a1)) == []

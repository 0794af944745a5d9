"""Writes to the grid tree: stored columns, paths, moves, units and staff placement."""

from __future__ import annotations

import pytest
import shapely

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids import crs
from civicgrid.grids.models import Grid, Kind, Level
from civicgrid.grids.services import (
    GridError,
    assign_community_staff,
    assign_grid_worker,
    create_handling_unit,
    save_grids,
)
from civicgrid.grids.tests.fixtures import (
    COMMUNITY_A,
    COMMUNITY_C,
    DISTRICT,
    EAST,
    GRID_A1,
    WEST,
    Tree,
    box,
)
from civicgrid.grids.validation import GridInput

pytestmark = pytest.mark.django_db


def test_saved_grids_carry_area_centroid_bounds_and_path(tree: Tree) -> None:
    grid = Grid.objects.get(code=GRID_A1)
    assert grid.area_m2 == pytest.approx(crs.area_m2(box(103.70, 35.95, 103.75, 36.00)), abs=0.01)
    assert (grid.centroid_lon, grid.centroid_lat) == pytest.approx((103.725, 35.975))
    assert (grid.min_lon, grid.min_lat, grid.max_lon, grid.max_lat) == pytest.approx(
        (103.70, 35.95, 103.75, 36.00)
    )
    ids = [tree.district.pk, tree.west.pk, tree.community_a.pk, grid.pk]
    assert grid.path == "/" + "/".join(map(str, ids)) + "/"
    assert grid.ancestor_ids == ids
    assert [g.code for g in grid.ancestors()] == [DISTRICT, WEST, COMMUNITY_A, GRID_A1]
    assert grid.kind == Kind.GRID
    assert grid.households == 301


def test_the_centroid_of_a_crescent_lies_inside_it(db: None) -> None:
    crescent = shapely.difference(box(104.0, 36.0, 104.1, 36.1), box(104.01, 36.01, 104.1, 36.09))
    (grid,) = save_grids(
        items=[GridInput(code="620199", name="月牙区", level=0, geometry=crescent, index=1)]
    )
    assert not shapely.contains(crescent, shapely.centroid(crescent))
    assert shapely.contains(grid.geometry, shapely.Point(grid.centroid_lon, grid.centroid_lat))


def test_an_update_moves_a_grid_and_its_subtree_to_a_new_parent(tree: Tree) -> None:
    # Community A leaves the west subdistrict for the east one (whose polygon grows).
    save_grids(
        items=[
            GridInput(
                code=WEST,
                name="西街道",
                level=1,
                parent_code=DISTRICT,
                geometry=box(103.70, 36.00, 103.80, 36.05),
            ),
            GridInput(
                code=EAST,
                name="东街道",
                level=1,
                parent_code=DISTRICT,
                geometry=shapely.union(
                    box(103.80, 35.95, 103.90, 36.05), box(103.70, 35.95, 103.80, 36.00)
                ),
            ),
            GridInput(
                code=COMMUNITY_A,
                name="甲社区",
                level=2,
                parent_code=EAST,
                geometry=box(103.70, 35.95, 103.80, 36.00),
            ),
        ],
        replace_existing=True,
    )
    east = Grid.objects.get(code=EAST)
    moved = Grid.objects.get(code=GRID_A1)
    assert moved.path.startswith(east.path)
    assert [g.code for g in moved.ancestors()] == [DISTRICT, EAST, COMMUNITY_A, GRID_A1]
    assert Grid.objects.in_subtree(east).count() == 7 + 3


def test_an_update_keeps_the_kind_unless_the_level_changes(tree: Tree) -> None:
    Grid.objects.filter(code=COMMUNITY_C).update(kind=Kind.VILLAGE)
    (grid,) = save_grids(
        items=[
            GridInput(
                code=COMMUNITY_C,
                name="丙村",
                level=2,
                parent_code=EAST,
                geometry=box(103.80, 35.95, 103.90, 36.00),
            )
        ],
        replace_existing=True,
    )
    assert grid.kind == Kind.VILLAGE
    assert grid.name == "丙村"


def test_assign_grid_worker_places_a_worker_on_a_level_3_grid(tree: Tree, outsider: User) -> None:
    membership = assign_grid_worker(grid=tree.grid_a1, user=outsider, title="兼职网格员")
    assert (membership.role, membership.grid, membership.title) == (
        Role.GRID_WORKER,
        tree.grid_a1,
        "兼职网格员",
    )
    again = assign_grid_worker(grid=tree.grid_a1, user=outsider)
    assert again.pk == membership.pk
    assert Membership.objects.filter(user=outsider).count() == 1


@pytest.mark.parametrize("code", [DISTRICT, WEST, COMMUNITY_A])
def test_assign_grid_worker_refuses_grids_that_are_not_level_3(
    tree: Tree, outsider: User, code: str
) -> None:
    grid = tree[code]
    with pytest.raises(GridError, match="网格员只能分配到三级网格") as raised:
        assign_grid_worker(grid=grid, user=outsider)
    assert str(Level(grid.level).label) in str(raised.value)
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.parametrize("code", [DISTRICT, GRID_A1])
def test_community_staff_go_on_subdistricts_or_communities_only(
    tree: Tree, outsider: User, code: str
) -> None:
    with pytest.raises(GridError, match="街道/社区工作人员只能分配到街道或社区"):
        assign_community_staff(grid=tree[code], user=outsider)


def test_a_handling_unit_code_and_name_are_unique(tree: Tree) -> None:
    create_handling_unit(code="U1", name="区住建局", kind="bureau", serves=tree.district)
    with pytest.raises(GridError, match="处置单位编码 U1 已存在"):
        create_handling_unit(code="U1", name="别的名字", kind="bureau", serves=tree.district)
    with pytest.raises(GridError, match="处置单位“区住建局”已存在"):
        create_handling_unit(code="U2", name="区住建局", kind="bureau", serves=tree.district)

"""The in-memory locator agrees with brute force, in batch and singly, and stays fresh."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from civicgrid.grids import crs, locator, services
from civicgrid.grids.models import Grid
from civicgrid.grids.tests.fixtures import (
    COMMUNITY_A,
    DISTRICT,
    GRID_A1,
    LAT0,
    LAT1,
    LON0,
    LON1,
    WEST,
    Tree,
    box,
)
from civicgrid.grids.validation import GridInput

pytestmark = pytest.mark.django_db

# Points in and around the district (a margin of 0.05° outside on every side).
lons = st.floats(min_value=LON0 - 0.05, max_value=LON1 + 0.05)
lats = st.floats(min_value=LAT0 - 0.05, max_value=LAT1 + 0.05)


def code_at(lon: float, lat: float, crs_name: str = "wgs84") -> str | None:
    """The code of the deepest grid at the point, ``None`` outside."""
    grid = locator.locate(lon, lat, crs_name).grid
    return grid.code if grid else None


def brute_force(lon: float, lat: float) -> int:
    """The deepest active grid whose polygon contains the point, by checking them all."""
    point = shapely.Point(lon, lat)
    hits = [g for g in Grid.objects.active() if shapely.contains(g.geometry, point)]
    if not hits:
        return locator.OUTSIDE
    return max(hits, key=lambda g: g.level).pk


def brute_force_table() -> list[tuple[int, int, shapely.Geometry]]:
    return [(g.pk, g.level, g.geometry) for g in Grid.objects.active()]


def deepest(table: list[tuple[int, int, shapely.Geometry]], lon: float, lat: float) -> int:
    hits = [(level, pk) for pk, level, geom in table if shapely.contains_xy(geom, lon, lat)]
    return max(hits)[1] if hits else locator.OUTSIDE


def test_a_point_in_a_grid_gives_the_grid_and_its_ancestors(tree: Tree) -> None:
    location = locator.locate(103.72, 35.97)
    assert location.inside
    assert location.grid is not None
    assert location.grid.code == GRID_A1
    assert [ref.code for ref in location.path] == [DISTRICT, WEST, COMMUNITY_A, GRID_A1]
    assert [ref.level for ref in location.path] == [0, 1, 2, 3]


def test_a_point_outside_the_jurisdiction_is_outside_not_a_guess(tree: Tree) -> None:
    location = locator.locate(104.5, 36.5)
    assert not location.inside
    assert location.grid is None
    assert location.as_dict() == {
        "inside": False,
        "lon": 104.5,
        "lat": 36.5,
        "grid": None,
        "path": [],
    }


def test_an_empty_tree_locates_nothing(db: None) -> None:
    assert not locator.locate(103.8, 36.0).inside
    assert locator.get_locator().grid_ids_at(np.array([103.8]), np.array([36.0])).tolist() == [-1]


def test_it_agrees_with_brute_force_on_random_points(tree: Tree) -> None:
    table = brute_force_table()
    loc = locator.get_locator()

    @settings(max_examples=300, deadline=None, database=None)
    @given(lon=lons, lat=lats)
    def check(lon: float, lat: float) -> None:
        index = loc.index_at(lon, lat)
        found = int(loc.ids[index]) if index != locator.OUTSIDE else locator.OUTSIDE
        assert found == deepest(table, lon, lat)

    check()


def test_it_agrees_with_brute_force_where_grids_leave_a_community_uncovered(tree: Tree) -> None:
    services.set_grid_active(grid=tree["620103002002002"], active=False)  # D2 off
    table = brute_force_table()
    loc = locator.get_locator()

    @settings(max_examples=300, deadline=None, database=None)
    @given(lon=lons, lat=lats)
    def check(lon: float, lat: float) -> None:
        index = loc.index_at(lon, lat)
        found = int(loc.ids[index]) if index != locator.OUTSIDE else locator.OUTSIDE
        assert found == deepest(table, lon, lat)

    check()


def test_the_brute_force_helper_agrees_with_itself(tree: Tree) -> None:
    assert brute_force(103.72, 35.97) == tree.grid_a1.pk
    assert brute_force(104.5, 36.5) == locator.OUTSIDE


def test_batch_lookups_equal_single_lookups(tree: Tree) -> None:
    loc = locator.get_locator()

    @settings(max_examples=100, deadline=None, database=None)
    @given(points=st.lists(st.tuples(lons, lats), min_size=1, max_size=60))
    def check(points: list[tuple[float, float]]) -> None:
        xs = np.array([p[0] for p in points])
        ys = np.array([p[1] for p in points])
        batch = loc.grid_ids_at(xs, ys).tolist()
        single = []
        for x, y in points:
            location = loc.locate_storage(x, y)
            single.append(location.grid.id if location.grid else locator.OUTSIDE)
        assert batch == single

    check()


def test_batch_lookups_handle_many_points_at_once(tree: Tree) -> None:
    rng = np.random.default_rng(20240601)
    xs = rng.uniform(LON0 - 0.05, LON1 + 0.05, 5000)
    ys = rng.uniform(LAT0 - 0.05, LAT1 + 0.05, 5000)
    loc = locator.get_locator()
    ids = loc.grid_ids_at(xs, ys)
    table = brute_force_table()
    sample = rng.choice(5000, 200, replace=False)
    assert [int(ids[i]) for i in sample] == [deepest(table, xs[i], ys[i]) for i in sample]
    inside = (xs > LON0) & (xs < LON1) & (ys > LAT0) & (ys < LAT1)
    assert ((ids != locator.OUTSIDE) == inside).all()


def test_a_community_partly_uncovered_by_grids_is_the_answer_there(tree: Tree) -> None:
    new = "620103001003"
    # Widen the district and the west subdistrict northwards, with a new
    # community there whose only grid covers its west half.
    services.save_grids(
        items=[
            GridInput(code=DISTRICT, name="示范区", level=0, geometry=box(LON0, LAT0, LON1, 36.10)),
            GridInput(
                code=WEST,
                name="西街道",
                level=1,
                parent_code=DISTRICT,
                geometry=box(103.70, LAT0, 103.80, 36.10),
            ),
            GridInput(
                code=new,
                name="戊社区",
                level=2,
                parent_code=WEST,
                geometry=box(103.70, 36.05, 103.80, 36.10),
            ),
            GridInput(
                code=f"{new}001",
                name="戊社区第1网格",
                level=3,
                parent_code=new,
                geometry=box(103.70, 36.05, 103.75, 36.10),  # the west half only
            ),
        ],
        replace_existing=True,
    )
    assert code_at(103.72, 36.07) == f"{new}001"
    assert code_at(103.78, 36.07) == new
    uncovered = locator.locate(103.78, 36.07)
    assert [ref.code for ref in uncovered.path] == [DISTRICT, WEST, new]


def test_a_subdistrict_with_no_communities_is_a_leaf(tree: Tree) -> None:
    for code in ("620103002001001", "620103002001002", "620103002002001", "620103002002002"):
        services.set_grid_active(grid=tree[code], active=False)
    services.set_grid_active(grid=tree["620103002001"], active=False)
    services.set_grid_active(grid=tree["620103002002"], active=False)
    assert code_at(103.85, 36.0) == "620103002"


def test_gcj02_input_locates_the_same_grid_as_the_converted_wgs_point(tree: Tree) -> None:
    # A point 30 m inside grid A1's east edge: GCJ-02 moves it a few hundred
    # metres, so only a correct conversion lands it in A1.
    wgs = (103.75 - 0.0004, 35.975)
    gcj = crs.from_storage(*wgs, "gcj02")
    assert code_at(*gcj) != GRID_A1
    assert code_at(*gcj, crs_name="gcj02") == GRID_A1
    location = locator.locate(*gcj, crs_name="gcj02")
    assert crs.distance_m(location.lon, location.lat, *wgs) < 0.5
    bd = crs.from_storage(*wgs, "bd09")
    assert locator.locate(*bd, crs_name="bd09").grid == location.grid


@settings(max_examples=50, deadline=None, database=None)
@given(lon=st.floats(103.701, 103.899), lat=st.floats(35.951, 36.049))
def test_gcj02_and_wgs_agree_for_any_point_clear_of_the_edges(lon: float, lat: float) -> None:
    loc = locator.Locator(
        ids=[1, 2],
        codes=["w", "e"],
        names=["w", "e"],
        levels=[3, 3],
        parent_ids=[None, None],
        geometries=[box(103.7, 35.95, 103.8, 36.05), box(103.8, 35.95, 103.9, 36.05)],
    )
    gcj = crs.from_storage(lon, lat, "gcj02")
    back = crs.to_storage(*gcj, "gcj02")
    if abs(lon - 103.8) > 1e-5:
        assert loc.locate_storage(*back).grid == loc.locate_storage(lon, lat).grid


def test_the_locator_refreshes_after_grids_are_saved(tree: Tree) -> None:
    before = locator.get_locator()
    assert not locator.locate(103.95, 36.0).inside
    services.save_grids(
        items=[
            GridInput(code="620104", name="邻区", level=0, geometry=box(103.9, 35.95, 104.0, 36.05))
        ]
    )
    after = locator.get_locator()
    assert after is not before
    assert after.version != before.version
    assert code_at(103.95, 36.0) == "620104"


def test_the_locator_refreshes_after_a_grid_is_retired_and_restored(tree: Tree) -> None:
    assert code_at(103.72, 35.97) == GRID_A1
    services.set_grid_active(grid=tree.grid_a1, active=False)
    assert code_at(103.72, 35.97) == COMMUNITY_A
    services.set_grid_active(grid=tree.grid_a1, active=True)
    assert code_at(103.72, 35.97) == GRID_A1


def test_retiring_a_subtree_retires_everything_below(tree: Tree) -> None:
    services.set_grid_active(grid=tree.west, active=False)
    assert Grid.objects.in_subtree(tree.west).filter(is_active=True).count() == 0
    location = locator.locate(103.72, 35.97)
    assert [ref.code for ref in location.path] == [DISTRICT]


def test_a_process_drops_its_index_when_a_change_commits(
    tree: Tree,
    settings: Settings,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # With a long recheck interval only the commit hook can refresh this process.
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 3600
    stale = locator.get_locator()
    with django_capture_on_commit_callbacks(execute=True):
        services.set_grid_active(grid=tree.grid_a1, active=False)
    assert locator.get_locator() is not stale
    assert code_at(103.72, 35.97) == COMMUNITY_A


def test_without_a_commit_a_process_keeps_its_index_until_the_recheck(
    tree: Tree, settings: Settings
) -> None:
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 3600
    stale = locator.get_locator()
    services.set_grid_active(grid=tree.grid_a1, active=False)  # commit hooks do not run here
    assert locator.get_locator() is stale
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 0
    assert locator.get_locator() is not stale


def test_the_version_stamp_moves_on_every_change(tree: Tree) -> None:
    first = locator.current_version()
    services.set_grid_active(grid=tree.grid_a1, active=False)
    second = locator.current_version()
    assert second[0] == first[0] + 1
    assert second[1] != first[1]

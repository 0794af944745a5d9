"""``/api/v1/grids`` and ``/api/v1/locate``: the same scoping as the pages, 401 for strangers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicgrid.accounts.models import User
from civicgrid.grids import crs
from civicgrid.grids.models import Grid
from civicgrid.grids.tests.fixtures import (
    COMMUNITY_A,
    COMMUNITY_B,
    DISTRICT,
    EAST,
    GRID_A1,
    GRID_A2,
    WEST,
    Tree,
)

pytestmark = pytest.mark.django_db


def as_user(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def get_json(client: Client, url: str, status: int = 200, **params: Any) -> Any:
    response = client.get(url, params)
    assert response.status_code == status, response.content
    return response.json()


def listed(user: User, **params: Any) -> list[str]:
    return [g["code"] for g in get_json(as_user(user), "/api/v1/grids", **params)]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/grids",
        "/api/v1/grids/1",
        "/api/v1/grids/geojson",
        "/api/v1/locate?lon=103.72&lat=35.97",
    ],
)
def test_an_unauthenticated_request_gets_401(tree: Tree, url: str) -> None:
    assert Client().get(url).status_code == 401


def test_the_dispatcher_lists_the_whole_district(tree: Tree, dispatcher: User) -> None:
    codes = listed(dispatcher)
    assert len(codes) == 15
    assert codes[0] == DISTRICT  # ordered by path: parents first


def test_community_staff_list_only_their_community(tree: Tree, community_staff: User) -> None:
    assert sorted(listed(community_staff)) == [COMMUNITY_A, GRID_A1, GRID_A2]


def test_the_grid_worker_lists_only_their_grid(tree: Tree, grid_worker: User) -> None:
    assert listed(grid_worker) == [GRID_A1]


def test_the_unit_handler_lists_the_units_subtree(tree: Tree, unit_handler: User) -> None:
    codes = listed(unit_handler)
    assert len(codes) == 7
    assert all(code.startswith(EAST) for code in codes)


def test_the_outsider_lists_nothing(tree: Tree, outsider: User) -> None:
    assert listed(outsider) == []


def test_list_filters_by_level_parent_within_and_text(tree: Tree, dispatcher: User) -> None:
    assert len(listed(dispatcher, level=3)) == 8
    assert listed(dispatcher, parent=tree.west.pk) == [COMMUNITY_A, COMMUNITY_B]
    assert listed(dispatcher, within=tree.community_a.pk) == [COMMUNITY_A, GRID_A1, GRID_A2]
    assert listed(dispatcher, q="甲社区") == [COMMUNITY_A, GRID_A1, GRID_A2]
    assert listed(dispatcher, q=WEST)[0] == WEST


def test_within_a_grid_out_of_scope_is_404(tree: Tree, community_staff: User) -> None:
    get_json(as_user(community_staff), "/api/v1/grids", 404, within=tree.community_b.pk)


def test_the_list_takes_a_fixed_number_of_queries(
    tree: Tree, dispatcher: User, django_assert_max_num_queries: Any
) -> None:
    client = as_user(dispatcher)
    with django_assert_max_num_queries(6):
        client.get("/api/v1/grids")
    with django_assert_max_num_queries(6):
        client.get("/api/v1/grids/geojson")


def test_grid_detail_shows_the_path_workers_and_polygon(
    tree: Tree, community_staff: User, grid_worker: User
) -> None:
    detail = get_json(as_user(community_staff), f"/api/v1/grids/{tree.grid_a1.pk}")
    assert detail["code"] == GRID_A1
    assert [p["code"] for p in detail["path"]] == [DISTRICT, WEST, COMMUNITY_A, GRID_A1]
    assert detail["workers"] == [{"id": grid_worker.pk, "name": "赵磊", "phone": "13800000001"}]
    assert detail["children"] == 0
    assert detail["geometry"]["type"] == "Polygon"
    assert detail["area_m2"] == pytest.approx(tree.grid_a1.area_m2)
    assert detail["centroid"] == pytest.approx([103.725, 35.975])


def test_grid_detail_out_of_scope_and_missing_are_both_404(
    tree: Tree, community_staff: User, outsider: User
) -> None:
    missing = Grid.objects.order_by("-pk").first().pk + 1000  # type: ignore[union-attr]
    for grid_id in (tree.community_b.pk, tree.district.pk, missing):
        get_json(as_user(community_staff), f"/api/v1/grids/{grid_id}", 404)
    get_json(as_user(outsider), f"/api/v1/grids/{tree.grid_a1.pk}", 404)


def test_geojson_holds_only_the_grids_in_scope(tree: Tree, grid_worker: User) -> None:
    doc = get_json(as_user(grid_worker), "/api/v1/grids/geojson")
    assert doc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in doc["features"]] == [GRID_A1]
    assert doc["features"][0]["properties"]["kind"] == "网格"
    assert doc["features"][0]["geometry"]["type"] == "Polygon"


def test_geojson_of_community_a_staff_never_holds_community_b(
    tree: Tree, community_staff: User
) -> None:
    doc = get_json(as_user(community_staff), "/api/v1/grids/geojson")
    codes = {f["properties"]["code"] for f in doc["features"]}
    assert codes == {COMMUNITY_A, GRID_A1, GRID_A2}


def test_locate_gives_the_deepest_grid_and_its_path(tree: Tree, grid_worker: User) -> None:
    doc = get_json(as_user(grid_worker), "/api/v1/locate", lon=103.72, lat=35.97)
    assert doc["inside"] is True
    assert doc["grid"]["code"] == GRID_A1
    assert [p["level"] for p in doc["path"]] == [0, 1, 2, 3]


def test_locate_outside_says_so(tree: Tree, dispatcher: User) -> None:
    doc = get_json(as_user(dispatcher), "/api/v1/locate", lon=104.5, lat=36.5)
    assert doc == {"inside": False, "lon": 104.5, "lat": 36.5, "grid": None, "path": []}


def test_locate_takes_gcj02_and_bd09(tree: Tree, dispatcher: User) -> None:
    client = as_user(dispatcher)
    for name in ("gcj02", "bd09"):
        lon, lat = crs.from_storage(103.7496, 35.975, name)
        doc = get_json(client, "/api/v1/locate", lon=lon, lat=lat, crs=name)
        assert doc["grid"]["code"] == GRID_A1
        assert crs.distance_m(doc["lon"], doc["lat"], 103.7496, 35.975) < 0.5


def test_locate_with_an_unknown_crs_is_400(tree: Tree, dispatcher: User) -> None:
    response = as_user(dispatcher).get(
        "/api/v1/locate", {"lon": "103.7", "lat": "36", "crs": "mars"}
    )
    assert response.status_code == 400
    assert "未知的坐标系" in response.json()["detail"]


def test_the_openapi_schema_lists_the_grid_endpoints(db: None) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/grids",
        "/api/v1/grids/{grid_id}",
        "/api/v1/grids/geojson",
        "/api/v1/locate",
    ):
        assert path in schema["paths"]

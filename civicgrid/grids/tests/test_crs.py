"""Coordinate conversions against published values, round trips, areas in m².

Reference values: coordtransform by wandergis (github.com/wandergis/coordTransform_py),
input (116.404, 39.915).
"""

from __future__ import annotations

import numpy as np
import prcoords
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from pytest_django.fixtures import Settings

from civicgrid.grids import crs

LON, LAT = 116.404, 39.915
BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)
GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
GCJ02_TO_WGS84_ROUGH = (116.39775550083061, 39.91359571849836)

# Around Lanzhou.
lons = st.floats(min_value=103.4, max_value=104.2)
lats = st.floats(min_value=35.8, max_value=36.3)


def test_wgs84_to_gcj02_matches_the_published_value() -> None:
    assert crs.from_storage(LON, LAT, "gcj02") == pytest.approx(WGS84_TO_GCJ02, abs=1e-9)


def test_the_library_bd09_and_gcj02_conversions_match_the_published_values() -> None:
    bd_gcj = prcoords.bd_gcj((LAT, LON))
    gcj_bd = prcoords.gcj_bd((LAT, LON))
    assert (bd_gcj.lon, bd_gcj.lat) == pytest.approx(BD09_TO_GCJ02, abs=1e-9)
    assert (gcj_bd.lon, gcj_bd.lat) == pytest.approx(GCJ02_TO_BD09, abs=1e-9)


def test_gcj02_to_bd09_through_storage_matches_the_published_value() -> None:
    lon, lat = crs.to_storage(LON, LAT, "gcj02")
    assert crs.from_storage(lon, lat, "bd09") == pytest.approx(GCJ02_TO_BD09, abs=1e-7)


def test_bd09_to_gcj02_through_storage_is_within_centimetres_of_the_published_value() -> None:
    # The published bd09→gcj02 is the closed-form approximate inverse (decimetre
    # level); ours inverts BD-09 iteratively, so the two differ by a few cm.
    lon, lat = crs.to_storage(LON, LAT, "bd09")
    assert crs.distance_m(*crs.from_storage(lon, lat, "gcj02"), *BD09_TO_GCJ02) < 0.1


def test_the_precise_gcj02_inverse_beats_the_rough_one() -> None:
    precise = crs.to_storage(LON, LAT, "gcj02")
    # The rough inverse is metres away; ours lands where GCJ-02 maps it back to the input.
    assert crs.distance_m(*precise, *GCJ02_TO_WGS84_ROUGH) < 5
    again = crs.from_storage(*precise, "gcj02")
    assert crs.distance_m(*again, LON, LAT) < 0.01
    rough_again = crs.from_storage(*GCJ02_TO_WGS84_ROUGH, "gcj02")
    assert crs.distance_m(*rough_again, LON, LAT) > crs.distance_m(*again, LON, LAT)


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_the_inverse_is_exact_to_a_micrometre(name: str) -> None:
    for lon, lat in [(103.75, 35.95), (103.7, 36.0), (116.404, 39.915), (121.47, 31.23)]:
        there = crs.from_storage(lon, lat, name)
        back = crs.to_storage(*there, name)
        assert back == pytest.approx((lon, lat), abs=1e-11)


def test_gcj02_leaves_points_outside_china_alone_both_ways() -> None:
    assert crs.from_storage(2.35, 48.85, "gcj02") == (2.35, 48.85)
    assert crs.to_storage(2.35, 48.85, "gcj02") == (2.35, 48.85)


def test_bd09_outside_china_round_trips_too() -> None:
    there = crs.from_storage(2.35, 48.85, "bd09")  # Baidu's own offset only
    assert crs.to_storage(*there, "bd09") == pytest.approx((2.35, 48.85), abs=1e-11)


@pytest.mark.parametrize("name", ["wgs84", "WGS-84", "EPSG:4326", "cgcs2000", "EPSG:4490"])
def test_storage_systems_pass_through_unchanged(name: str) -> None:
    assert crs.to_storage(103.8, 36.0, name) == (103.8, 36.0)
    assert crs.from_storage(103.8, 36.0, name) == (103.8, 36.0)


@pytest.mark.parametrize("name", ["mars", "EPSG:999999", "epsg:abc"])
def test_an_unknown_system_is_a_clear_error(name: str) -> None:
    with pytest.raises(crs.CRSInputError, match="未知的坐标系"):
        crs.normalize(name)


@settings(max_examples=200, deadline=None, database=None)
@given(lon=lons, lat=lats)
def test_gcj02_round_trip_is_within_half_a_metre_around_lanzhou(lon: float, lat: float) -> None:
    gcj = crs.from_storage(lon, lat, "gcj02")
    assert crs.distance_m(*gcj, lon, lat) > 100  # it does move the point
    back = crs.to_storage(*gcj, "gcj02")
    assert crs.distance_m(*back, lon, lat) < 0.5


@settings(max_examples=200, deadline=None, database=None)
@given(lon=lons, lat=lats)
def test_bd09_round_trip_is_within_half_a_metre_around_lanzhou(lon: float, lat: float) -> None:
    bd = crs.from_storage(lon, lat, "bd09")
    back = crs.to_storage(*bd, "bd09")
    assert crs.distance_m(*back, lon, lat) < 0.5


@settings(max_examples=50, deadline=None, database=None)
@given(lon=lons, lat=lats)
def test_gauss_kruger_round_trip_is_exact_to_a_millimetre(lon: float, lat: float) -> None:
    x, y = crs.from_storage(lon, lat, "EPSG:4544")
    back = crs.to_storage(x, y, "EPSG:4544")
    assert crs.distance_m(*back, lon, lat) < 0.001


def test_a_geometry_converts_vertex_by_vertex() -> None:
    square = shapely.box(103.80, 36.00, 103.81, 36.01)
    gcj = shapely.transform(
        square, lambda c: np.array([crs.from_storage(x, y, "gcj02") for x, y in c])
    )
    back = crs.geometry_to_storage(gcj, "gcj02")
    for (x0, y0), (x1, y1) in zip(
        shapely.get_coordinates(square), shapely.get_coordinates(back), strict=True
    ):
        assert crs.distance_m(x0, y0, x1, y1) < 0.5


def test_the_area_crs_is_the_gauss_kruger_zone_of_the_longitude() -> None:
    assert crs.area_crs_for(103.8) == "EPSG:4544"  # Lanzhou: CM 105°E
    assert crs.area_crs_for(116.4) == "EPSG:4548"  # Beijing: CM 117°E


@pytest.mark.parametrize(("lon", "lat"), [(103.8, 36.0), (103.51, 35.86), (116.4, 39.9)])
def test_the_area_of_a_square_matches_an_independent_geodesic_computation(
    lon: float, lat: float
) -> None:
    square = shapely.box(lon, lat, lon + 0.01, lat + 0.01)  # about 0.9 km × 1.1 km
    geodesic, _perimeter = Geod(ellps="GRS80").geometry_area_perimeter(
        shapely.orient_polygons(square, exterior_cw=False)
    )
    assert geodesic > 0
    assert crs.area_m2(square) == pytest.approx(geodesic, rel=1e-3)


def test_the_area_of_a_district_sized_square_is_within_a_tenth_of_a_percent() -> None:
    square = shapely.box(103.70, 35.95, 103.90, 36.05)
    geodesic, _ = Geod(ellps="GRS80").geometry_area_perimeter(
        shapely.orient_polygons(square, exterior_cw=False)
    )
    assert crs.area_m2(square) == pytest.approx(geodesic, rel=1e-3)
    assert 195e6 < crs.area_m2(square) < 205e6  # ~18 km × 11 km


def test_the_area_crs_can_be_fixed_in_settings(settings: Settings) -> None:
    square = shapely.box(103.8, 36.0, 103.81, 36.01)
    auto = crs.area_m2(square)
    settings.CIVICGRID_AREA_CRS = "EPSG:4544"
    assert crs.area_m2(square) == pytest.approx(auto, rel=1e-9)

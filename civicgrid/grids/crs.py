"""Coordinate reference systems at the platform's edge.

Storage is longitude/latitude in CGCS2000 (EPSG:4490), which agrees with WGS-84
to well within a metre at grid scale, so the two are stored alike. Chinese web
maps and phone SDKs send GCJ-02 (Amap, Tencent) or BD-09 (Baidu): those are
converted with ``prcoords``'s forward formulas and an iterative inverse accurate to
micrometres.
Projected inputs (e.g. a Shapefile in CGCS2000 Gauss-Krüger) go through pyproj.
Areas are computed in CGCS2000 3-degree Gauss-Krüger.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import prcoords
import shapely
from django.conf import settings
from django.utils.translation import gettext as _
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

WGS84 = "wgs84"
CGCS2000 = "cgcs2000"
GCJ02 = "gcj02"
BD09 = "bd09"

#: Names accepted wherever a CRS is asked for, besides ``EPSG:<code>``.
ALIASES = {
    "wgs84": WGS84,
    "wgs-84": WGS84,
    "epsg:4326": WGS84,
    "4326": WGS84,
    "cgcs2000": CGCS2000,
    "epsg:4490": CGCS2000,
    "4490": CGCS2000,
    "gcj02": GCJ02,
    "gcj-02": GCJ02,
    "gcj": GCJ02,
    "bd09": BD09,
    "bd-09": BD09,
    "bd09ll": BD09,
    "baidu": BD09,
}
STORAGE_CRS = {WGS84, CGCS2000}
CHOICES = [
    (WGS84, "WGS-84"),
    (CGCS2000, "CGCS2000"),
    (GCJ02, "GCJ-02 (高德/腾讯)"),
    (BD09, "BD-09 (百度)"),
]


class CRSInputError(ValueError):
    """An unknown coordinate system, or coordinates that cannot be converted."""


def normalize(crs: str | None) -> str:
    """Canonical name of ``crs``: one of the four names, or ``EPSG:<code>``."""
    if not crs:
        return WGS84
    key = str(crs).strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    if key.startswith("epsg:"):
        code = key.split(":", 1)[1]
        try:
            CRS.from_epsg(int(code))
        except (ValueError, CRSError) as exc:
            raise CRSInputError(_("未知的坐标系：%(crs)s") % {"crs": crs}) from exc
        return f"EPSG:{int(code)}"
    raise CRSInputError(
        _("未知的坐标系：%(crs)s（可用 wgs84、cgcs2000、gcj02、bd09 或 EPSG:代码）") % {"crs": crs}
    )


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    # prcoords warns and returns the input unchanged outside China; callers check
    # the range themselves, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def to_storage(lon: float, lat: float, crs: str | None) -> tuple[float, float]:
    """Convert one point from ``crs`` to storage longitude/latitude."""
    name = normalize(crs)
    if name in STORAGE_CRS:
        return float(lon), float(lat)
    if name in (GCJ02, BD09):
        # Outside China ``from_storage`` leaves GCJ-02 alone (BD-09 keeps only
        # Baidu's own offset); the inverse does the same.
        china = prcoords.sanity_in_china_p(prcoords.Coords(lat, lon))
        if name == GCJ02:
            return _gcj_to_storage(float(lon), float(lat)) if china else (float(lon), float(lat))
        return _invert(prcoords.wgs_bd if china else prcoords.gcj_bd, lon, lat)
    x, y = _transformer(name, "EPSG:4490").transform(lon, lat)
    return float(x), float(y)


#: When the iterative inverse stops: the forward image within this many degrees
#: of the input (1e-11° is about a micrometre).
_INVERSE_EPS = 1e-11


def _invert(forward: Callable[..., Any], lon: float, lat: float) -> tuple[float, float]:
    """The storage point ``forward`` maps onto (lon, lat), by fixed-point iteration.

    prcoords' own ``*_bored`` inverses stop as soon as a step is under 1e-5°, which
    leaves up to ~1e-8° (a millimetre): enough to make a child's shared vertex
    stick out of its parent by square metres along a kilometre-long edge. Each
    step here gains about three digits, so this takes four or five.
    """
    x, y = float(lon), float(lat)
    for _step in range(20):
        out = forward((y, x), False)
        dx, dy = out.lon - lon, out.lat - lat
        x, y = x - dx, y - dy
        if abs(dx) < _INVERSE_EPS and abs(dy) < _INVERSE_EPS:
            break
    return x, y


#: prcoords' GCJ-02 constants (Krasovsky 1940).
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323


def _wgs_gcj(lon: Any, lat: Any, m: Any = math) -> tuple[Any, Any]:
    """``prcoords.wgs_gcj`` without its China check, on floats (``m=math``) or arrays
    (``m=numpy``): the same operations in the same order, so the same bits, without
    prcoords' namedtuples.
    """
    x, y = lon - 105.0, lat - 35.0
    pi, sin = math.pi, m.sin
    both = 2 * sin(x * 6 * pi) + 2 * sin(x * 2 * pi)
    dlat_m = (
        -100
        + 2 * x
        + 3 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * m.sqrt(abs(x))
        + (
            both
            + 2 * sin(y * pi)
            + 4 * sin(y / 3 * pi)
            + 16 * sin(y / 12 * pi)
            + 32 * sin(y / 30 * pi)
        )
        * 20
        / 3
    )
    dlon_m = (
        300
        + x
        + 2 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * m.sqrt(abs(x))
        + (
            both
            + 2 * sin(x * pi)
            + 4 * sin(x / 3 * pi)
            + 15 * sin(x / 12 * pi)
            + 30 * sin(x / 30 * pi)
        )
        * 20
        / 3
    )
    rad = m.radians(lat)
    magic = 1 - _GCJ_EE * sin(rad) ** 2
    lat_len = m.radians(_GCJ_A * (1 - _GCJ_EE) / magic**1.5)
    lon_len = m.radians(_GCJ_A * m.cos(rad) / m.sqrt(magic))
    return lon + dlon_m / lon_len, lat + dlat_m / lat_len


def _gcj_to_storage(lon: float, lat: float) -> tuple[float, float]:
    """``_invert(prcoords.wgs_gcj, lon, lat)``, bit for bit, three times faster."""
    x, y = lon, lat
    for _step in range(20):
        fx, fy = _wgs_gcj(x, y)
        dx, dy = fx - lon, fy - lat
        x, y = x - dx, y - dy
        if abs(dx) < _INVERSE_EPS and abs(dy) < _INVERSE_EPS:
            break
    return x, y


def _gcj_array_to_storage(coords: np.ndarray) -> np.ndarray:
    """The same iteration on an (N, 2) array; a point stops when it has converged."""
    lon, lat = coords[:, 0], coords[:, 1]
    x, y = lon.copy(), lat.copy()
    china = (lat >= 0.8293) & (lat <= 55.8271) & (lon >= 72.004) & (lon <= 137.8347)
    todo = np.flatnonzero(china)
    for _step in range(20):
        if not len(todo):
            break
        fx, fy = _wgs_gcj(x[todo], y[todo], np)
        dx, dy = fx - lon[todo], fy - lat[todo]
        x[todo] -= dx
        y[todo] -= dy
        todo = todo[(np.abs(dx) >= _INVERSE_EPS) | (np.abs(dy) >= _INVERSE_EPS)]
    return np.column_stack([x, y])


def from_storage(lon: float, lat: float, crs: str | None) -> tuple[float, float]:
    """Convert one stored point to ``crs`` (for maps that draw in GCJ-02 or BD-09)."""
    name = normalize(crs)
    if name in STORAGE_CRS:
        return float(lon), float(lat)
    if name == GCJ02:
        out = _quiet(prcoords.wgs_gcj, (lat, lon))
        return out.lon, out.lat
    if name == BD09:
        out = _quiet(prcoords.wgs_bd, (lat, lon))
        return out.lon, out.lat
    x, y = _transformer("EPSG:4490", name).transform(lon, lat)
    return float(x), float(y)


def array_to_storage(coords: np.ndarray, crs: str | None) -> np.ndarray:
    """Convert an (N, 2) array of lon/lat pairs to storage."""
    name = normalize(crs)
    coords = np.asarray(coords, dtype=float)
    if name in STORAGE_CRS:
        return coords
    if name == GCJ02:
        return _gcj_array_to_storage(coords.reshape(-1, 2))
    if name == BD09:
        return np.array([to_storage(x, y, name) for x, y in coords], dtype=float).reshape(-1, 2)
    x, y = _transformer(name, "EPSG:4490").transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def geometry_to_storage(geom: shapely.Geometry, crs: str | None) -> shapely.Geometry:
    if normalize(crs) in STORAGE_CRS:
        return geom
    return shapely.transform(geom, lambda c: array_to_storage(c, crs))


@lru_cache(maxsize=32)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def area_crs_for(lon: float) -> str:
    """The projected CRS areas are computed in, for a polygon centred at ``lon``."""
    configured = settings.CIVICGRID_AREA_CRS
    if configured and configured.lower() != "auto":
        return str(configured)
    # CGCS2000 / 3-degree Gauss-Kruger CM 75E .. 135E are EPSG:4534 .. 4554.
    zone = round((lon - 75.0) / 3.0)
    zone = min(max(zone, 0), 20)
    return f"EPSG:{4534 + zone}"


def projected(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` (storage lon/lat) in the Gauss-Krüger zone of its centroid."""
    crs = area_crs_for(shapely.centroid(geom).x)
    transformer = _transformer("EPSG:4490", crs)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


#: Longest edge (degrees, about 100 m) before projecting for an area: a straight
#: lon/lat edge is a curve in Gauss-Krüger, and a sliver of float noise along a
#: long edge would otherwise gain the area between chord and curve.
AREA_SEGMENT_DEG = 0.001


def area_m2(geom: shapely.Geometry) -> float:
    """Area in square metres, computed in CGCS2000 Gauss-Krüger."""
    if shapely.is_empty(geom):
        return 0.0
    return float(projected(shapely.segmentize(geom, AREA_SEGMENT_DEG)).area)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres on the CGCS2000 ellipsoid."""
    _az1, _az2, dist = _geod().inv(lon1, lat1, lon2, lat2)
    return float(dist)


@lru_cache(maxsize=1)
def _geod() -> Any:
    return CRS.from_epsg(4490).get_geod()

"""Which grid is this point in? An in-memory spatial index, not a database query.

Each process holds a ``Locator`` built from the active grids: an STRtree over the
leaf polygons (grids without active children), which is where almost every
point ends, and a second one over all polygons for the rest (a point in a
community no level-3 grid covers, or outside the jurisdiction). Polygons are
prepared once, so a test is a bounding-box lookup plus a prepared
point-in-polygon.

The index is rebuilt when the grid version stamp in the database moves; a
process reads the stamp at most every ``CIVICGRID_LOCATOR_RECHECK_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from django.conf import settings

from civicgrid.grids import crs

OUTSIDE = -1


@dataclass(frozen=True)
class GridRef:
    id: int
    code: str
    name: str
    level: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "level": self.level}


@dataclass(frozen=True)
class Location:
    """The answer of ``locate``: the deepest grid and its ancestors, or outside."""

    lon: float
    lat: float
    path: tuple[GridRef, ...] = field(default=())

    @property
    def inside(self) -> bool:
        return bool(self.path)

    @property
    def grid(self) -> GridRef | None:
        return self.path[-1] if self.path else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "inside": self.inside,
            "lon": self.lon,
            "lat": self.lat,
            "grid": self.grid.as_dict() if self.grid else None,
            "path": [ref.as_dict() for ref in self.path],
        }


class Locator:
    """Point-in-grid lookups over a fixed set of polygons."""

    def __init__(
        self,
        *,
        ids: Sequence[int],
        codes: Sequence[str],
        names: Sequence[str],
        levels: Sequence[int],
        parent_ids: Sequence[int | None],
        geometries: Sequence[shapely.Geometry],
        version: tuple[int, str] = (0, ""),
    ) -> None:
        self.version = version
        n = len(ids)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.levels = np.asarray(levels, dtype=np.int16)
        self.geoms = np.asarray(geometries, dtype=object)
        shapely.prepare(self.geoms)
        self.refs = [GridRef(int(ids[i]), codes[i], names[i], int(levels[i])) for i in range(n)]
        self.index_of = {int(grid_id): i for i, grid_id in enumerate(ids)}
        self.parent_index = np.array(
            [self.index_of.get(p, -1) if p is not None else -1 for p in parent_ids], dtype=np.int64
        )
        has_child = np.zeros(n, dtype=bool)
        has_child[self.parent_index[self.parent_index >= 0]] = True
        self.leaf_index = np.flatnonzero(~has_child)
        self.leaf_geoms = self.geoms[self.leaf_index]
        self.leaf_tree = shapely.STRtree(self.leaf_geoms)
        self.all_tree = shapely.STRtree(self.geoms)
        # Ancestor chains, filled in as points land in them.
        self._paths: list[tuple[GridRef, ...] | None] = [None] * n

    def __len__(self) -> int:
        return len(self.ids)

    # -- single point -------------------------------------------------------
    def index_at(self, lon: float, lat: float) -> int:
        """Index of the deepest polygon containing the point, or ``OUTSIDE``."""
        # A one-element array, not a scalar Point: STRtree.query's scalar path
        # (and shapely.Point()) cost more than the whole lookup otherwise does.
        point = shapely.points(np.array([[lon, lat]]))
        cands = self.leaf_tree.query(point)[1]
        if len(cands):
            hit = shapely.contains_xy(self.leaf_geoms[cands], lon, lat)
            if hit.any():
                return int(self.leaf_index[cands[hit.argmax()]])
        cands = self.all_tree.query(point)[1]
        if not len(cands):
            return OUTSIDE
        hit = shapely.contains_xy(self.geoms[cands], lon, lat)
        if not hit.any():
            return OUTSIDE
        inside = cands[hit]
        return int(inside[self.levels[inside].argmax()])

    def path_of(self, index: int) -> tuple[GridRef, ...]:
        path = self._paths[index]
        if path is None:
            chain: list[GridRef] = []
            i = index
            while i >= 0:
                chain.append(self.refs[i])
                i = int(self.parent_index[i])
            path = self._paths[index] = tuple(reversed(chain))
        return path

    def locate_storage(self, lon: float, lat: float) -> Location:
        index = self.index_at(lon, lat)
        return Location(lon, lat, self.path_of(index) if index != OUTSIDE else ())

    # -- batch ----------------------------------------------------------------
    def indices_at(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Deepest polygon index for each point (``OUTSIDE`` where none)."""
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        result = np.full(len(lons), OUTSIDE, dtype=np.int64)
        points = shapely.points(lons, lats)
        pt, cand = self.leaf_tree.query(points)
        if len(pt):
            # Test the (point, polygon) pairs grouped by polygon, not in query
            # order: consecutive tests against one prepared polygon are much
            # cheaper (contains_xy 4x faster on 100,000 grids).
            pt, cand = _by_polygon(pt, cand)
            idx = self.leaf_index[cand]
            hit = shapely.contains_xy(self.geoms[idx], lons[pt], lats[pt])
            result[pt[hit]] = idx[hit]
        missing = np.flatnonzero(result == OUTSIDE)
        if len(missing):
            pt, cand = self.all_tree.query(points[missing])
            if len(pt):
                pt, cand = _by_polygon(pt, cand)
                hit = shapely.contains_xy(self.geoms[cand], lons[missing][pt], lats[missing][pt])
                pt, cand = pt[hit], cand[hit]
                # Keep the deepest hit of each point: sort by level, last write wins.
                order = np.argsort(self.levels[cand], kind="stable")
                result[missing[pt[order]]] = cand[order]
        return result

    def grid_ids_at(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Deepest grid id for each point, ``OUTSIDE`` (-1) where none."""
        idx = self.indices_at(lons, lats)
        out = np.full(len(idx), OUTSIDE, dtype=np.int64)
        inside = idx >= 0
        out[inside] = self.ids[idx[inside]]
        return out


def _by_polygon(pt: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(cand, kind="stable")
    return pt[order], cand[order]


def build_from_db() -> Locator:
    from civicgrid.grids.models import Grid, GridVersion

    stamp = GridVersion.objects.filter(pk=1).values_list("version", "token").first()
    rows = list(
        Grid.objects.active()
        .order_by("level", "id")
        .values_list("id", "code", "name", "level", "parent_id", "geom_wkb")
    )
    ids = [r[0] for r in rows]
    active = set(ids)
    return Locator(
        ids=ids,
        codes=[r[1] for r in rows],
        names=[r[2] for r in rows],
        levels=[r[3] for r in rows],
        parent_ids=[r[4] if r[4] in active else None for r in rows],
        geometries=shapely.from_wkb([bytes(r[5]) for r in rows]) if rows else [],
        version=(stamp[0], stamp[1]) if stamp else (0, ""),
    )


class _Cache:
    def __init__(self) -> None:
        self.locator: Locator | None = None
        self.checked_at = 0.0
        self.lock = threading.Lock()


_cache = _Cache()


def invalidate() -> None:
    """Drop this process's index; the next lookup rebuilds it."""
    _cache.locator = None
    _cache.checked_at = 0.0


def current_version() -> tuple[int, str]:
    from civicgrid.grids.models import GridVersion

    stamp = GridVersion.objects.filter(pk=1).values_list("version", "token").first()
    return (stamp[0], stamp[1]) if stamp else (0, "")


def get_locator() -> Locator:
    """This process's index, rebuilt when the grid version stamp has moved."""
    now = time.monotonic()
    loc = _cache.locator
    if loc is not None and now - _cache.checked_at < settings.CIVICGRID_LOCATOR_RECHECK_SECONDS:
        return loc
    with _cache.lock:
        loc = _cache.locator
        if loc is None or current_version() != loc.version:
            loc = build_from_db()
            _cache.locator = loc
        _cache.checked_at = time.monotonic()
        return loc


def locate(lon: float, lat: float, crs_name: str | None = crs.WGS84) -> Location:
    """The deepest grid containing the point and its ancestors, or outside.

    ``crs_name`` is the system the point is given in (``wgs84``, ``cgcs2000``,
    ``gcj02``, ``bd09`` or ``EPSG:<code>``); ``Location.lon/lat`` are in storage.
    """
    x, y = crs.to_storage(lon, lat, crs_name)
    return get_locator().locate_storage(x, y)

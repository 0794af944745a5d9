"""What the leader dashboard and the big screen show, as JSON-ready dicts.

``dashboard_data`` assembles one scope's figures for one period from the selectors
(rollups: a dozen small queries whatever the volume); ``heat_points`` the case
locations of the heat map (the newest ``HEAT_LIMIT`` cases of the period, summed
into cells of ``HEAT_CELL_DEGREES``); ``area_geojson`` the simplified outlines of
the areas under a grid, cached per grid-tree version.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

import shapely
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.cases.models import Case, Status
from civicgrid.grids.locator import current_version
from civicgrid.grids.models import Grid, Level
from civicgrid.stats import conf, exports, measures, selectors
from civicgrid.stats.periods import Period

#: The KPI tiles, in order.
KPIS = (
    "received",
    "closed",
    "in_progress",
    "overdue",
    "overdue_open",
    "close_rate",
    "ontime_close_rate",
    "ontime_finish_rate",
    "acknowledge_ontime_rate",
    "handle_ontime_rate",
    "satisfaction_rate",
    "satisfaction_score",
)
#: What each area of the choropleth carries.
AREA_MEASURES = (
    "received",
    "closed",
    "in_progress",
    "overdue",
    "overdue_rate",
    "close_rate",
    "ontime_close_rate",
    "satisfaction_rate",
)
TREND_MEASURES = ("received", "closed", "overdue")
BREAKDOWN_MEASURES = ("received", "closed", "in_progress", "overdue", "close_rate")
LEAGUE_FIELDS = (
    "rank",
    "key",
    "name",
    "received",
    "closed",
    "close_rate",
    "handle_ontime_rate",
    "rework_rate",
    "score",
    "band",
    "band_color",
)
#: The category chart shows this many 大类 (the export has them all).
TOP_CATEGORIES = 10
FEED_SIZE = 12
#: The heat map reads at most this many cases (the newest of the period) …
HEAT_LIMIT = 5000
#: … summed into cells of this size (about 100 m).
HEAT_CELL_DEGREES = 0.001
#: The choropleth's outlines are simplified to this share of the parent's extent.
GEO_TOLERANCE = 1 / 2000
GEO_CACHE_SECONDS = 24 * 3600


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row.get(name) for name in names}


def child_level(grid: Grid) -> int | None:
    return grid.level + 1 if grid.level < Level.GRID else None


def dashboard_data(*, scope: Grid, period: Period, feed_size: int = FEED_SIZE) -> dict[str, Any]:
    """Every figure of the dashboard for ``scope`` and ``period``."""
    start, end = period.start, period.end
    totals = selectors.totals(scope=scope, start=start, end=end)
    grain = period.grain()
    trend = selectors.trend(scope=scope, start=start, end=end, grain=grain)
    majors = selectors.breakdown(scope=scope, start=start, end=end, by="major")
    channels = selectors.breakdown(scope=scope, start=start, end=end, by="channel")
    league = selectors.unit_league(scope=scope, start=start, end=end)
    areas = (
        selectors.grid_values(parent=scope, start=start, end=end)
        if child_level(scope) is not None
        else []
    )
    others = majors[TOP_CATEGORIES:]
    return {
        "period": period.as_dict(),
        "kpis": _pick(totals, KPIS),
        "hotline": selectors.hotline_kpis(scope=scope, start=start, end=end),
        "trend": {
            "grain": grain,
            "rows": [
                {"period": r["period"].isoformat(), "label": r["label"], **_pick(r, TREND_MEASURES)}
                for r in trend
            ],
        },
        "categories": [
            {"key": r["key"], "name": r["name"], **_pick(r, BREAKDOWN_MEASURES)}
            for r in majors[:TOP_CATEGORIES]
        ],
        "other_categories": sum(r["received"] for r in others),
        "channels": [
            {"key": r["key"], "name": r["name"], **_pick(r, BREAKDOWN_MEASURES)} for r in channels
        ],
        "league": [_pick(r, LEAGUE_FIELDS) for r in league],
        "bands": [{"min": b.min, "name": b.name, "color": b.color} for b in conf.bands()],
        "areas": [
            {
                "grid_id": r["grid_id"],
                "code": r["code"],
                "name": r["name"],
                "level": r["level"],
                "centroid": list(r["centroid"]),
                **_pick(r, AREA_MEASURES),
            }
            for r in areas
        ],
        "feed": feed(scope=scope, limit=feed_size),
        "generated_at": timezone.localtime().isoformat(timespec="seconds"),
    }


def feed(*, scope: Grid, limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The newest cases for a screen anyone in the room may read: no title or
    description, no requester, no coordinates — what, where, who handles it, how far."""
    return [
        {
            "number": c["number"],
            "received_at": timezone.localtime(c["received_at"]).isoformat(timespec="minutes"),
            "time": timezone.localtime(c["received_at"]).strftime("%m-%d %H:%M"),
            "category": c["category"],
            "status": c["status"],
            "status_label": c["status_label"],
            "grid": c["grid"],
            "unit": c["unit"],
            "overdue": bool(c["is_overdue"]),
        }
        for c in selectors.latest_cases(scope=scope, limit=limit)
    ]


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def heat_points(*, scope: Grid, start: date, end: date, limit: int = HEAT_LIMIT) -> dict[str, Any]:
    """Where the cases of the period were: ``[lat, lon, count]`` per cell of
    ``HEAT_CELL_DEGREES``, from the newest ``limit`` located cases taken in during the
    period (one indexed query, bounded whatever the volume)."""
    rows: list[tuple[float, float]] = list(
        Case.objects.in_subtree(scope)
        .filter(
            received_at__gte=_local_midnight(start),
            received_at__lt=_local_midnight(end + timedelta(days=1)),
            lon__isnull=False,
            lat__isnull=False,
        )
        .exclude(status=Status.MERGED)
        .order_by("-received_at")
        .values_list("lon", "lat")[:limit]  # type: ignore[arg-type]  # not null, filtered
    )
    cells = Counter(
        (round(lon / HEAT_CELL_DEGREES), round(lat / HEAT_CELL_DEGREES)) for lon, lat in rows
    )
    points = [
        [round(y * HEAT_CELL_DEGREES, 6), round(x * HEAT_CELL_DEGREES, 6), n]
        for (x, y), n in sorted(cells.items())
    ]
    return {
        "points": points,
        "max": max(cells.values(), default=0),
        "cases": len(rows),
        "limit": limit,
        "truncated": len(rows) >= limit,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def area_geojson(grid: Grid) -> dict[str, Any]:
    """The outlines of the areas under ``grid`` (the grid itself when it has none),
    simplified for a screen; cached until the grid tree changes."""
    version, token = current_version()
    key = f"civicgrid:stats:geo:{grid.pk}:{version}:{token}"
    found = cache.get(key)
    if found is None:
        found = _area_geojson(grid)
        cache.set(key, found, GEO_CACHE_SECONDS)
    return found


def _area_geojson(grid: Grid) -> dict[str, Any]:
    areas = list(Grid.objects.filter(parent=grid, is_active=True).order_by("code"))
    leaf = not areas
    if leaf:
        areas = [grid]
    extent = max(grid.max_lon - grid.min_lon, grid.max_lat - grid.min_lat)
    tolerance = extent * GEO_TOLERANCE
    features = []
    for area in areas:
        shape = shapely.simplify(area.geometry, tolerance, preserve_topology=True)
        geometry = shapely.geometry.mapping(shape)
        features.append(
            {
                "type": "Feature",
                "id": area.pk,
                "geometry": {
                    "type": geometry["type"],
                    "coordinates": _rounded(geometry["coordinates"]),
                },
                "properties": {
                    "id": area.pk,
                    "code": area.code,
                    "name": area.name,
                    "level": area.level,
                    "has_children": not leaf and area.level < Level.GRID,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "bbox": [grid.min_lon, grid.min_lat, grid.max_lon, grid.max_lat],
    }


# -- the pages' tables as downloads -------------------------------------------------------------
def export_table(name: str, *, scope: Grid, period: Period) -> exports.Table:
    """One table of the pages, whole (the charts show the first rows only): ``kpis``
    (every measure and the 12345 KPIs), ``trend``, ``major``, ``category``,
    ``channel``, ``unit`` (the league with scores), ``areas`` (the evaluation of the
    areas under the scope) or ``children`` (the choropleth's figures)."""
    start, end = period.start, period.end
    if name == "kpis":
        row = dict(selectors.totals(scope=scope, start=start, end=end))
        hotline = selectors.hotline_kpis(scope=scope, start=start, end=end)
        row.update({f"hotline_{key}": value for key, value in hotline.items()})
        columns = [
            *exports.measure_columns(list(measures.MEASURES)),
            *[
                exports.Column(
                    f"hotline_{key}",
                    _("12345 %(m)s") % {"m": measures.label(key)},
                    measures.kind(key),
                )
                for key in hotline
            ],
        ]
        return exports.Table(_("概况"), columns, [row])
    if name == "trend":
        grain = period.grain()
        return exports.Table(
            _("趋势"),
            [
                exports.Column("label", _("时间"), exports.TEXT),
                *exports.measure_columns(exports.TABLE_MEASURES),
            ],
            selectors.trend(scope=scope, start=start, end=end, grain=grain),
        )
    if name == "areas":
        return exports.area_table(parent=scope, start=start, end=end)
    if name == "children":
        by = {1: "subdistrict", 2: "community"}.get(scope.level + 1, "grid")
        return exports.breakdown_table(scope=scope, start=start, end=end, by=by)
    if name in ("major", "category", "channel", "unit"):
        return exports.breakdown_table(scope=scope, start=start, end=end, by=name)
    raise ValueError(f"unknown table {name!r}")

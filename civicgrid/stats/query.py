"""Reading the rollups: the one place that decides which table answers a question.

- Totals, trends and per-grid values read ``GridRollup`` (any scope).
- A breakdown by one dimension (category, unit, channel, request type), or a
  figure filtered on one (the hotline's), reads ``DimRollup`` (district and
  subdistrict: ``dim_levels``).
- Anything else reads the ``Rollup`` cube (district, subdistrict: ``rollup_levels``).
- Below those levels, the per-case facts of the scope are summed (few rows).
- Whole months are read from month rows, the rest of a period from day rows, so a
  year is about twelve rows per key whatever the volume.

``stats.selectors`` (the dashboards' API) and ``stats.evaluations`` build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Q, Sum

from civicgrid.cases.models import Category
from civicgrid.grids.models import Grid
from civicgrid.stats import conf
from civicgrid.stats.counters import CASE_COUNTERS, zero_case
from civicgrid.stats.measures import measures, rules
from civicgrid.stats.models import CaseFact, DimRollup, GridRollup, Rollup


@dataclass(frozen=True)
class Filters:
    """Narrow the cases counted. Empty tuples mean "any"."""

    categories: tuple[int, ...] = ()
    units: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    request_types: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.categories or self.units or self.channels or self.request_types)

    def q(self) -> Q:
        query = Q()
        if self.categories:
            query &= Q(category__in=self.categories)
        if self.units:
            query &= Q(unit__in=self.units)
        if self.channels:
            query &= Q(channel__in=self.channels)
        if self.request_types:
            query &= Q(request_type__in=self.request_types)
        return query


NO_FILTERS = Filters()


def domain_filters(key: str) -> Filters:
    """Filters for one domain of ``conf.domains`` (e.g. ``urban``: 城市管理)."""
    domain = next((d for d in conf.get("domains") if d["key"] == key), None)
    if domain is None:
        raise ValueError(f"unknown domain {key!r}")
    ids = Category.objects.filter(kind__in=domain["kinds"], parent__isnull=False)
    return Filters(categories=tuple(ids.values_list("pk", flat=True)))


def hotline_filters() -> Filters:
    return Filters(channels=tuple(conf.get("hotline_channels")))


# -- periods --------------------------------------------------------------------------------
def period_bounds(kind: str, day: date) -> tuple[date, date]:
    """The day, the week (Monday to Sunday) or the month containing ``day``."""
    if kind == "day":
        return day, day
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if kind == "month":
        return day.replace(day=1), _month_end(day)
    if kind == "year":
        return day.replace(month=1, day=1), day.replace(month=12, day=31)
    raise ValueError(f"unknown period {kind!r}")


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def spans(start: date, end: date) -> Q:
    """Rollup rows covering ``start`` … ``end``: month rows for whole months, day rows
    for the rest."""
    first = start if start.day == 1 else _month_end(start) + timedelta(days=1)
    last = _month_end(end) if _month_end(end) == end else end.replace(day=1) - timedelta(days=1)
    if first > last:
        return Q(grain="d", period__range=(start, end))
    query = Q(grain="m", period__range=(first, last.replace(day=1)))
    if start < first:
        query |= Q(grain="d", period__range=(start, first - timedelta(days=1)))
    if last < end:
        query |= Q(grain="d", period__range=(last + timedelta(days=1), end))
    return query


# -- reading the rollups --------------------------------------------------------------------
_SUMS = {name: Sum(name) for name in CASE_COUNTERS}
#: The dimensions of ``DimRollup`` and the filter field of each.
DIMENSIONS = {
    "category": "categories",
    "unit": "units",
    "channel": "channels",
    "request_type": "request_types",
}
INT_DIMENSIONS = ("category", "unit")


def _levels(key: str) -> set[int]:
    return {int(level) for level in conf.get(key)}


def _summed(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of summed counters; groups whose counters are all zero (left behind when a
    case moved to another unit, say) are dropped, except the one total of no group."""
    out = []
    for row in rows:
        counters = {name: int(row[name] or 0) for name in CASE_COUNTERS}
        if keys and not any(counters.values()):
            continue
        out.append({**{k: row[k] for k in keys}, "counters": counters})
    return out


def _scoped(model: Any, scope: Grid | None) -> Any:
    """A rollup's rows of the scope: its node's, or every root's for ``None``."""
    if scope is None:
        return model.objects.filter(level=0)
    return model.objects.filter(node=scope.pk)


def _read(rows: Any, keys: list[str], daily: bool) -> list[dict[str, Any]]:
    """Sum rollup rows by ``keys`` (and by day): ``period`` is read as ``day``."""
    if daily:
        group = ["period", *keys]
        found = _summed(rows.values(*group).annotate(**_SUMS).order_by(*group), group)
        for row in found:
            row["day"] = row.pop("period")
        return found
    if keys:
        return _summed(rows.values(*keys).annotate(**_SUMS).order_by(*keys), keys)
    return _summed([rows.aggregate(**_SUMS)], [])


def _one_dimension(keys: list[str], filters: Filters) -> str | None:
    """The dimension, if the question involves only one (``DimRollup`` answers it)."""
    used = set(keys) | {dim for dim, field in DIMENSIONS.items() if getattr(filters, field)}
    if len(used) == 1 and set(keys) <= used:
        return used.pop()
    return None


def case_counters(
    *,
    scope: Grid | None,
    start: date,
    end: date,
    by: Sequence[str] = (),
    filters: Filters = NO_FILTERS,
    daily: bool = False,
) -> list[dict[str, Any]]:
    """Summed case counters of the cases taken in from ``start`` to ``end`` in
    ``scope``, grouped by ``by`` (any of category, unit, channel, request_type) and,
    with ``daily``, by ``day``. Each row: its keys and ``counters``.

    The table that answers: without dimensions ``GridRollup``; with one (grouped by
    it, filtered on it, or both) ``DimRollup``; else the ``Rollup`` cube; below the
    levels a rollup is kept for, the facts. Whole months are read from month rows."""
    keys = list(by)
    period = Q(grain="d", period__range=(start, end)) if daily else spans(start, end)
    level = scope.level if scope is not None else 0
    if not keys and not filters:
        return _read(_scoped(GridRollup, scope).filter(period), [], daily)
    dim = _one_dimension(keys, filters)
    if dim is not None and level in _levels("dim_levels"):
        rows = _scoped(DimRollup, scope).filter(period, dim=dim)
        wanted = getattr(filters, DIMENSIONS[dim])
        if wanted:
            rows = rows.filter(key__in=[str(v) for v in wanted])
        found = _read(rows, ["key"] if keys else [], daily)
        for row in found:
            if keys:
                key = row.pop("key")
                row[dim] = int(key) if dim in INT_DIMENSIONS else key
        return found
    if level in _levels("rollup_levels"):
        return _read(_scoped(Rollup, scope).filter(period, filters.q()), keys, daily)
    assert scope is not None
    facts = CaseFact.objects.filter(
        filters.q(), **{f"node{scope.level}": scope.pk}, day__range=(start, end)
    )
    group = [*keys, "day"] if daily else keys
    if not group:
        return _summed([facts.aggregate(**_SUMS)], [])
    return _summed(facts.values(*group).annotate(**_SUMS).order_by(*group), group)


def _total(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    total = zero_case()
    for row in rows:
        for name, value in row["counters"].items():
            total[name] += value
    return total


def totals(
    *, scope: Grid | None, start: date, end: date, filters: Filters = NO_FILTERS
) -> dict[str, Any]:
    """Every measure of the cases taken in during the period in the scope."""
    return measures(_total(case_counters(scope=scope, start=start, end=end, filters=filters)))


@dataclass(frozen=True)
class _Cat:
    code: str
    name: str
    kind: str
    parent_id: int | None


def categories() -> dict[int, _Cat]:
    return {
        pk: _Cat(code, name, kind, parent)
        for pk, code, name, kind, parent in Category.objects.values_list(
            "pk", "code", "name", "kind", "parent_id"
        )
    }


# -- per grid (choropleth) ------------------------------------------------------------------------
def grid_values(
    *,
    parent: Grid | None,
    start: date,
    end: date,
    level: int | None = None,
    filters: Filters = NO_FILTERS,
) -> list[dict[str, Any]]:
    """Measures for every grid of ``level`` (default: the level under ``parent``) in
    ``parent``'s subtree, with zeros for grids without cases: a choropleth's data
    (``received``, ``overdue``, ``satisfaction_rate`` …) and its drill-down."""
    parent_level = parent.level if parent is not None else -1
    level = parent_level + 1 if level is None else level
    grids = Grid.objects.filter(level=level)
    if parent is not None:
        grids = grids.filter(path__startswith=parent.path)
    found = list(
        grids.order_by("code").values("pk", "code", "name", "level", "centroid_lon", "centroid_lat")
    )
    ids = [g["pk"] for g in found]
    rows: Any
    node = "node"
    dim = _one_dimension([], filters)
    if not filters:
        rows = GridRollup.objects.filter(spans(start, end))
        if parent is not None and level == parent_level + 1:
            rows = rows.filter(parent=parent.pk, level=level)
        else:
            rows = rows.filter(node__in=ids)
    elif dim is not None and level in _levels("dim_levels"):
        wanted = [str(v) for v in getattr(filters, DIMENSIONS[dim])]
        rows = DimRollup.objects.filter(spans(start, end), dim=dim, key__in=wanted, node__in=ids)
    elif level in _levels("rollup_levels"):
        rows = Rollup.objects.filter(filters.q(), spans(start, end), node__in=ids)
    else:
        node = f"node{level}"
        rows = CaseFact.objects.filter(filters.q(), day__range=(start, end))
        if parent is not None:
            rows = rows.filter(**{f"node{parent.level}": parent.pk})
    sums: dict[int, dict[str, int]] = {
        row[node]: {name: int(row[name] or 0) for name in CASE_COUNTERS}
        for row in rows.values(node).annotate(**_SUMS)
    }
    rule = rules()
    return [
        {
            "grid_id": g["pk"],
            "key": g["code"],
            "code": g["code"],
            "name": g["name"],
            "level": g["level"],
            "centroid": (g["centroid_lon"], g["centroid_lat"]),
            **measures(sums.get(g["pk"], zero_case()), rule),
        }
        for g in found
    ]

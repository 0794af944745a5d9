"""Reading the rollups: the one place that decides which table answers a question.

- Totals, trends and per-grid values read ``GridRollup`` (any scope).
- A breakdown by one dimension (category, unit, channel, request type), or a
  figure filtered on one (the hotline's), reads ``DimRollup`` (district and
  subdistrict: ``dim_levels``).
- Anything else reads the ``Rollup`` cube (district, subdistrict: ``rollup_levels``).
- Below those levels, the per-case facts of the scope are summed (few rows).
- Whole months are read from month rows, a partial month from its day rows or its
  month row less the days outside (``span_parts``), so a year is 13 to 43 rows per
  key whatever the volume.
- Each read is one statement written here (``summed_sql``) and fetched as tuples of
  ints: no ORM aggregates to compile, no per-value converters.

``stats.selectors`` (the dashboards' API) and ``stats.evaluations`` build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from django.db import connection, connections, router
from django.db.models import Q

from civicgrid.cases.models import Category
from civicgrid.grids.models import Grid
from civicgrid.stats import conf
from civicgrid.stats.counters import CASE_COUNTERS, CASE_SUMS, zero_case
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


def span_parts(start: date, end: date) -> list[tuple[int, str, date, date]]:
    """The rollup rows that sum to ``start`` … ``end``, as (sign, grain, first period,
    last period): month rows for whole months; a month the period covers in part by
    its day rows in the period or, when that reads fewer rows, by its month row less
    its day rows outside the period (sign -1). A year up to the 26th reads this month's
    row less the 27th to the 30th, not 26 day rows."""
    day = timedelta(days=1)
    months: list[date] = []
    plus: list[tuple[int, str, date, date]] = []
    minus: list[tuple[int, str, date, date]] = []
    month = start.replace(day=1)
    while month <= end:
        month_end = _month_end(month)
        low, high = max(start, month), min(end, month_end)
        inside = (high - low).days + 1
        outside = (month_end - month).days + 1 - inside
        if not outside:
            months.append(month)
        elif 1 + outside < inside:
            months.append(month)
            if month < low:
                minus.append((-1, "d", month, low - day))
            if high < month_end:
                minus.append((-1, "d", high + day, month_end))
        else:
            plus.append((1, "d", low, high))
        month = month_end + day
    # Only the first and the last month can be partial: the months are consecutive.
    whole = [(1, "m", months[0], months[-1])] if months else []
    return whole + plus + minus


# -- reading the rollups --------------------------------------------------------------------
#: The dimensions of ``DimRollup`` and the filter field of each.
DIMENSIONS = {
    "category": "categories",
    "unit": "units",
    "channel": "channels",
    "request_type": "request_types",
}
INT_DIMENSIONS = ("category", "unit")
#: 64-bit counters: PostgreSQL sums them as ``numeric``, cast back to ``bigint``.
_BIG = frozenset(CASE_SUMS)


def _levels(key: str) -> set[int]:
    return {int(level) for level in conf.get(key)}


# The reads are SQL written here and fetched as tuples: the ORM's per-value
# converters (an ``int()`` of each of 74 sums of every row) and its compiling of 74
# aggregates cost more than the database's work (docs/performance.md).
@lru_cache(maxsize=256)
def _q(name: str) -> str:
    """A quoted name (the same on SQLite and PostgreSQL, the databases civicgrid runs on)."""
    return connection.ops.quote_name(name)


@lru_cache(maxsize=32)
def sums_sql(vendor: str, names: tuple[str, ...], prefix: str = "") -> str:
    """``SUM(c), …`` of the counters ``names`` (integers whatever the database)."""
    out = []
    for name in names:
        column = f"{prefix}{_q(name)}"
        out.append(f"CAST(SUM({column}) AS BIGINT)" if name in _BIG else f"SUM({column})")
    return ", ".join(out)


@lru_cache(maxsize=32)
def _columns_sql(vendor: str, names: tuple[str, ...], negated: bool) -> str:
    """``c, …`` or ``-c, …`` (the rows to subtract)."""
    return ", ".join(f"{'-' if negated else ''}{_q(name)}" for name in names)


class Where:
    """A ``WHERE`` clause built up with its parameters, and the rollup rows of a
    period: those to add, and those to subtract (``span_parts``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.plus: tuple[str, list[Any]] | None = None
        self.minus: tuple[str, list[Any]] | None = None

    def add(self, sql: str, *params: Any) -> Where:
        self.parts.append(sql)
        self.params.extend(params)
        return self

    def equal(self, column: str, value: Any) -> Where:
        return self.add(f"{_q(column)} = %s", value)

    def among(self, column: str, values: Sequence[Any]) -> Where:
        if not values:
            return self.add("1 = 0")
        marks = ", ".join(["%s"] * len(values))
        return self.add(f"{_q(column)} IN ({marks})", *values)

    def days(self, column: str, start: date, end: date) -> Where:
        adapt = connection.ops.adapt_datefield_value
        return self.add(f"{_q(column)} BETWEEN %s AND %s", adapt(start), adapt(end))

    def periods(self, start: date, end: date, *, daily: bool = False) -> Where:
        """The rollup rows of the period: ``span_parts``, or every day with ``daily``."""
        parts = [(1, "d", start, end)] if daily else span_parts(start, end)
        self.plus = self._spans([p for p in parts if p[0] > 0])
        minus = [p for p in parts if p[0] < 0]
        self.minus = self._spans(minus) if minus else None
        return self

    @staticmethod
    def _spans(parts: list[tuple[int, str, date, date]]) -> tuple[str, list[Any]]:
        adapt = connection.ops.adapt_datefield_value
        grain, period = _q("grain"), _q("period")
        clause = f"({grain} = %s AND {period} BETWEEN %s AND %s)"
        params = [p for _s, g, low, high in parts for p in (g, adapt(low), adapt(high))]
        return "(" + " OR ".join([clause] * len(parts)) + ")", params

    def among_many(self, column: str, values: Sequence[int]) -> Where:
        """``among`` for hundreds of integers: on PostgreSQL one array parameter (a
        statement psycopg parses once, not one with a placeholder per value)."""
        if connection.vendor != "postgresql":
            return self.among(column, values)
        # The array cast to the column's type: psycopg sends small ints as int2[], and
        # PostgreSQL hashes an = ANY over a constant array only for the column's type
        # (with int2[] it searched the 325 ids for every row: 2× the statement's time).
        return self.add(f"{_q(column)} = ANY(CAST(%s AS integer[]))", list(values))

    def filters(self, filters: Filters) -> Where:
        for dim, field in DIMENSIONS.items():
            wanted = getattr(filters, field)
            if wanted:
                self.among(dim, wanted)
        return self

    def clause(self, period: tuple[str, list[Any]] | None) -> tuple[str, list[Any]]:
        """The conditions with one of the period's clauses, and their parameters."""
        if period is None:
            return " AND ".join(self.parts) or "1 = 1", self.params
        return " AND ".join([*self.parts, period[0]]), [*self.params, *period[1]]


def summed_sql(
    model: Any, keys: Sequence[str], where: Where, counters: tuple[str, ...] = CASE_COUNTERS
) -> tuple[str, list[Any]]:
    """``SELECT keys, SUM(counters) … GROUP BY keys ORDER BY keys`` over a model's
    table, with the rows to subtract, if any, negated in a ``UNION ALL``."""
    group = ", ".join(_q(k) for k in keys)
    select = f"SELECT {group + ', ' if group else ''}{sums_sql(connection.vendor, counters)}"
    table = _q(model._meta.db_table)
    sql, params = where.clause(where.plus)
    if where.minus is None:
        sql = f"{select} FROM {table} WHERE {sql}"
    else:
        less, less_params = where.clause(where.minus)
        columns = _columns_sql(connection.vendor, counters, False)
        negated = _columns_sql(connection.vendor, counters, True)
        key_list = group + ", " if group else ""
        sql = (
            f"{select} FROM (SELECT {key_list}{columns} FROM {table} WHERE {sql} "  # noqa: S608
            f"UNION ALL SELECT {key_list}{negated} FROM {table} WHERE {less}) r"
        )
        params = [*params, *less_params]
    if group:
        sql += f" GROUP BY {group} ORDER BY {group}"
    return sql, params


def summed_rows(
    model: Any, keys: Sequence[str], where: Where, counters: tuple[str, ...] = CASE_COUNTERS
) -> list[tuple[Any, ...]]:
    """The rows of ``summed_sql``: tuples of the keys and then the sums, in the order
    of ``counters``. Without keys, the one row of sums (``None`` each when no row
    matched)."""
    sql, params = summed_sql(model, keys, where, counters)
    with read_cursor(model) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def read_cursor(model: Any) -> Any:
    """A cursor of the database the router reads ``model`` from (a replica inside
    ``use_replica()``, as the ORM would): the statements here are written for the
    primary's engine, which the replicas share."""
    return connections[router.db_for_read(model)].cursor()


def _summed(rows: Iterable[Sequence[Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of summed counters; groups whose counters are all zero (left behind when a
    case moved to another unit, say) are dropped, except the one total of no group."""
    n = len(keys)
    if not n:
        (row,) = rows
        if row[0] is None:  # no rollup row at all
            return [{"counters": zero_case()}]
        return [{"counters": dict(zip(CASE_COUNTERS, row, strict=True))}]
    out = []
    for row in rows:
        values = row[n:]
        if any(values):
            found = dict(zip(keys, row[:n], strict=False))
            found["counters"] = dict(zip(CASE_COUNTERS, values, strict=True))
            out.append(found)
    return out


def _as_date(value: Any) -> date:
    """A date as the database returns it (SQLite: sometimes its text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _scoped(scope: Grid | None) -> Where:
    """A rollup's rows of the scope: its node's, or every root's for ``None``."""
    if scope is None:
        return Where().equal("level", 0)
    return Where().equal("node", scope.pk)


def _read(model: Any, where: Where, keys: list[str], daily: bool) -> list[dict[str, Any]]:
    """Sum rollup rows by ``keys`` (and by day): ``period`` is read as ``day``."""
    if daily:
        found = _summed(summed_rows(model, ["period", *keys], where), ["day", *keys])
        for row in found:
            row["day"] = _as_date(row["day"])
        return found
    return _summed(summed_rows(model, keys, where), keys)


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
    levels a rollup is kept for, the facts. Whole months are read from month rows.
    One query."""
    keys = list(by)
    level = scope.level if scope is not None else 0
    if not keys and not filters:
        return _read(GridRollup, _scoped(scope).periods(start, end, daily=daily), [], daily)
    dim = _one_dimension(keys, filters)
    if dim is not None and level in _levels("dim_levels"):
        where = _scoped(scope).equal("dim", dim).periods(start, end, daily=daily)
        wanted = getattr(filters, DIMENSIONS[dim])
        if wanted:
            where.among("key", [str(v) for v in wanted])
        found = _read(DimRollup, where, ["key"] if keys else [], daily)
        if keys:
            for row in found:
                key = row.pop("key")
                row[dim] = int(key) if dim in INT_DIMENSIONS else key
        return found
    if level in _levels("rollup_levels"):
        where = _scoped(scope).periods(start, end, daily=daily).filters(filters)
        return _read(Rollup, where, keys, daily)
    assert scope is not None
    where = Where().equal(f"node{scope.level}", scope.pk).days("day", start, end)
    where.filters(filters)
    group = [*keys, "day"] if daily else keys
    found = _summed(summed_rows(CaseFact, group, where), group)
    if daily:
        for row in found:
            row["day"] = _as_date(row["day"])
    return found


def _total(rows: list[dict[str, Any]]) -> dict[str, int]:
    if len(rows) == 1:
        return dict(rows[0]["counters"])
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
        grids.order_by("code").values_list(
            "pk", "code", "name", "level", "centroid_lon", "centroid_lat"
        )
    )
    ids = [g[0] for g in found]
    model: Any
    node = "node"
    dim = _one_dimension([], filters)
    where = Where().periods(start, end)
    if not filters:
        model = GridRollup
        if parent is not None and level == parent_level + 1:
            where.equal("parent", parent.pk).equal("level", level)
        else:
            where.equal("level", level).among_many("node", ids)
    elif dim is not None and level in _levels("dim_levels"):
        model = DimRollup
        wanted = [str(v) for v in getattr(filters, DIMENSIONS[dim])]
        where.equal("dim", dim).among("key", wanted).among_many("node", ids)
    elif level in _levels("rollup_levels"):
        model = Rollup
        where.filters(filters).among_many("node", ids)
    else:
        model, node = CaseFact, f"node{level}"
        where = Where().days("day", start, end).filters(filters)
        if parent is not None:
            where.equal(f"node{parent.level}", parent.pk)
    sums: dict[int, dict[str, int]] = {
        row[0]: dict(zip(CASE_COUNTERS, row[1:], strict=True))
        for row in summed_rows(model, [node], where)
    }
    rule = rules()
    zero = zero_case()
    return [
        {
            "grid_id": pk,
            "key": code,
            "code": code,
            "name": name,
            "level": grid_level,
            "centroid": (lon, lat),
            **measures(sums.get(pk, zero), rule),
        }
        for pk, code, name, grid_level, lon, lat in found
    ]

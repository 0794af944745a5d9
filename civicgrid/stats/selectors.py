"""The dashboards' reads: every figure of the statistics pages comes from here.

Every selector takes ``scope``, the root of the caller's grid subtree (``None``:
everything, for an administrator only), and a period of local days ``start`` …
``end`` (both included) in which the cases were taken in. Figures come from the
rollups (``stats.query`` decides which), never from counting cases; rows are
``measures.measures`` of summed counters plus a ``key`` and a ``name``.

The evaluations (league tables, scores, the 12345 KPIs) live in
``stats.evaluations`` and are importable from here too, with the reads of
``stats.query`` the pages need (``totals``, ``grid_values``, ``period_bounds`` …).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext as _

from civicgrid.cases.models import Case, CategoryKind, Channel, RequestType, Status
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.stats import conf
from civicgrid.stats.counters import zero_case
from civicgrid.stats.evaluations import (
    area_evaluation,
    hotline_kpis,
    position_evaluation,
    unit_evaluation,
    unit_league,
)
from civicgrid.stats.measures import measures, rules
from civicgrid.stats.query import (
    NO_FILTERS,
    Filters,
    case_counters,
    categories,
    domain_filters,
    grid_values,
    hotline_filters,
    period_bounds,
    totals,
)

DIMENSIONS = ("category", "major", "kind", "domain", "topic", "unit", "channel", "request_type")
GRAINS = ("day", "week", "month")
LEVEL_NAMES = {"subdistrict": 1, "community": 2, "grid": 3}


# -- headline, trends ---------------------------------------------------------------------------
def summary(*, scope: Grid | None, start: date, end: date) -> dict[str, Any]:
    """What the headline of a dashboard or the ``civicgrid stats`` JSON shows: the
    totals, the domains (城市管理 …) and how many units led the cases."""
    return {
        "totals": totals(scope=scope, start=start, end=end),
        "domains": breakdown(scope=scope, start=start, end=end, by="domain"),
        "units_involved": units_involved(scope=scope, start=start, end=end),
    }


def units_involved(*, scope: Grid | None, start: date, end: date) -> int:
    """Handling units that lead at least one case taken in during the period."""
    rows = case_counters(scope=scope, start=start, end=end, by=["unit"])
    return sum(1 for r in rows if r["unit"] and r["counters"]["received"] > 0)


def trend(
    *,
    scope: Grid | None,
    start: date,
    end: date,
    grain: str = "day",
    filters: Filters = NO_FILTERS,
) -> list[dict[str, Any]]:
    """Measures per day, week (Monday first) or month of intake, every bucket of the
    period present (zeros where nothing was taken in)."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}")
    rows = case_counters(scope=scope, start=start, end=end, filters=filters, daily=True)
    buckets: dict[date, dict[str, int] | None] = {}
    day = start
    while day <= end:
        buckets[_bucket(day, grain)] = None
        day += timedelta(days=1)
    for row in rows:  # one row a day (ours to change): a bucket of days sums its rows
        period = _bucket(row["day"], grain)
        target = buckets[period]
        if target is None:
            buckets[period] = row["counters"]
        else:
            _add(target, row["counters"])
    rule = rules()
    empty = measures(zero_case(), rule)
    return [
        {
            "period": period,
            "label": _period_label(period, grain),
            **(empty if counters is None else measures(counters, rule)),
        }
        for period, counters in sorted(buckets.items())
    ]


def _add(into: dict[str, int], counters: dict[str, int]) -> None:
    for name, value in counters.items():
        into[name] += value


def _bucket(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _period_label(period: date, grain: str) -> str:
    if grain == "month":
        return _("%(y)d年%(m)d月") % {"y": period.year, "m": period.month}
    if grain == "week":
        return _("%(d)s 起的一周") % {"d": period.isoformat()}
    return period.isoformat()


# -- breakdowns -------------------------------------------------------------------------------
def _keyer(by: str) -> tuple[str, Any]:
    """The ``Rollup`` field to group by and a function from its value to (key, name)s."""
    if by in ("channel", "request_type"):
        choices = dict(Channel.choices if by == "channel" else RequestType.choices)
        return by, lambda v: [(v, str(choices.get(v, v or _("未分类"))))]
    if by == "unit":
        units = dict(HandlingUnit.objects.values_list("pk", "name"))
        return "unit", lambda v: [(v, units.get(v, _("未派遣")))]
    cats = categories()
    if by == "category":
        return "category", lambda v: [(cats[v].code, cats[v].name)] if v in cats else []
    if by == "major":

        def major(v: int) -> list[tuple[str, str]]:
            cat = cats.get(v)
            parent = cats.get(cat.parent_id) if cat and cat.parent_id else cat
            return [(parent.code, parent.name)] if parent else []

        return "category", major
    if by == "kind":
        kinds = dict(CategoryKind.choices)
        return "category", lambda v: [(cats[v].kind, str(kinds[cats[v].kind]))] if v in cats else []
    if by == "domain":
        domains = conf.get("domains")

        def domain(v: int) -> list[tuple[str, str]]:
            cat = cats.get(v)
            return [(d["key"], str(d["name"])) for d in domains if cat and cat.kind in d["kinds"]]

        return "category", domain
    if by == "topic":
        topics = conf.get("topics")

        def topic(v: int) -> list[tuple[str, str]]:
            cat = cats.get(v)
            if cat is None:
                return []
            parent = cats.get(cat.parent_id) if cat.parent_id else None
            codes = {cat.code} | ({parent.code} if parent else set())
            for t in topics:
                if codes & set(t["codes"]):
                    return [(t["key"], str(t["name"]))]
            return [(cat.code, cat.name)]

        return "category", topic
    raise ValueError(f"unknown breakdown {by!r}")


def breakdown(
    *,
    scope: Grid | None,
    start: date,
    end: date,
    by: str,
    filters: Filters = NO_FILTERS,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Measures by ``by`` (one of ``DIMENSIONS``, or ``subdistrict``/``community``/
    ``grid`` for the levels under the scope), the most cases first. ``topic`` groups
    the categories of ``conf.topics`` and lists every other category on its own:
    the hot topics (热点)."""
    if by in LEVEL_NAMES:
        return grid_values(
            parent=scope, start=start, end=end, level=LEVEL_NAMES[by], filters=filters
        )
    field, keyer = _keyer(by)
    grouped: dict[Any, tuple[str, dict[str, int]]] = {}
    for row in case_counters(scope=scope, start=start, end=end, by=[field], filters=filters):
        for key, name in keyer(row[field]):
            if key in grouped:
                _add(grouped[key][1], row["counters"])
            else:
                grouped[key] = (name, dict(row["counters"]))
    if by == "domain":
        for d in conf.get("domains"):
            grouped.setdefault(d["key"], (str(d["name"]), zero_case()))
    rule = rules()
    out = [
        {"key": key, "name": name, **measures(counters, rule)}
        for key, (name, counters) in grouped.items()
    ]
    if by != "domain":
        out.sort(key=lambda r: (-r["received"], r["key"]))
    return out[:limit] if limit else out


def topics(*, scope: Grid | None, start: date, end: date, limit: int = 10) -> list[dict[str, Any]]:
    """The hot topics: ``breakdown(by="topic")``, the first ``limit``."""
    return breakdown(scope=scope, start=start, end=end, by="topic", limit=limit)


# -- the live feed ---------------------------------------------------------------------------
def latest_cases(*, scope: Grid | None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest cases taken in within the scope, newest first (one query)."""
    cases = Case.objects.select_related("category", "lead_unit", "grid").exclude(
        status=Status.MERGED
    )
    if scope is not None:
        cases = cases.in_subtree(scope)
    return [
        {
            "id": c.pk,
            "number": c.number,
            "title": c.title or c.category.name,
            "category": c.category.name,
            "status": c.status,
            "status_label": str(c.get_status_display()),
            "channel": c.channel,
            "received_at": c.received_at,
            "grid": c.grid.name if c.grid else "",
            "unit": c.lead_unit.name if c.lead_unit else "",
            "lon": c.lon,
            "lat": c.lat,
            "is_overdue": c.is_overdue,
        }
        for c in cases.order_by("-received_at", "-id")[:limit]
    ]


__all__ = [
    "DIMENSIONS",
    "GRAINS",
    "LEVEL_NAMES",
    "NO_FILTERS",
    "Filters",
    "area_evaluation",
    "breakdown",
    "case_counters",
    "domain_filters",
    "grid_values",
    "hotline_filters",
    "hotline_kpis",
    "latest_cases",
    "period_bounds",
    "position_evaluation",
    "summary",
    "topics",
    "totals",
    "trend",
    "unit_evaluation",
    "unit_league",
    "units_involved",
]

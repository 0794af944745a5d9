"""Evaluations after GB/T 30428.4: areas, handling units, positions, and the 12345 KPIs.

Each evaluation is a table of rates computed by ``measures`` (or, for people, from
person counters) with a composite score: a weighted mean of rates in 0..1 times 100,
weights from ``conf`` (a rate without data is left out and the rest re-weighted),
and the colour band the score falls in. Formulas: ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.db import connection

from civicgrid.accounts.models import Role, User
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.stats import conf
from civicgrid.stats.counters import PERSON_COUNTERS, STAGES
from civicgrid.stats.measures import Rules, measures, ratio, rules
from civicgrid.stats.models import PersonFact, PersonRollup
from civicgrid.stats.query import (
    NO_FILTERS,
    Filters,
    Where,
    case_counters,
    grid_values,
    hotline_filters,
    read_cursor,
    summed_sql,
    totals,
)


def composite(metrics: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """100 × the weighted mean of the rates that have data; ``None`` when none has."""
    return _composite(metrics, [(name, float(w)) for name, w in weights.items() if w])


def _composite(
    metrics: Mapping[str, float | None], weights: list[tuple[str, float]]
) -> float | None:
    used = [(w, float(v)) for name, w in weights if (v := metrics.get(name)) is not None]
    total = sum(w for w, _v in used)
    if not total:
        return None
    return round(100 * sum(w * v for w, v in used) / total, 2)


def _scored(rows: list[dict[str, Any]], weights: Mapping[str, float]) -> list[dict[str, Any]]:
    bands = conf.bands()
    used = [(name, float(w)) for name, w in weights.items() if w]
    for row in rows:
        row["score"] = score = _composite(row, used)
        band = conf.band_of(score, bands)
        row["band"] = band.name if band else ""
        row["band_color"] = band.color if band else ""
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), -r.get("received", 0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _one_minus(value: float | None) -> float | None:
    return None if value is None else 1 - value


# -- handling units ---------------------------------------------------------------------------
def unit_evaluation(
    *, scope: Grid | None, start: date, end: date, filters: Filters = NO_FILTERS
) -> list[dict[str, Any]]:
    """Every unit that led a case taken in during the period: 结案率, 按期处置率,
    返工率, volume, composite score (``unit_weights``), band and rank."""
    rows = [
        r
        for r in case_counters(scope=scope, start=start, end=end, by=["unit"], filters=filters)
        if r["unit"]
    ]
    names = dict(
        HandlingUnit.objects.filter(pk__in=[r["unit"] for r in rows]).values_list("pk", "name")
    )
    busiest = max((r["counters"]["received"] for r in rows), default=0)
    rule = rules()
    out = []
    for row in rows:
        m = measures(row["counters"], rule)
        out.append(
            {
                "key": row["unit"],
                "unit_id": row["unit"],
                "name": names.get(row["unit"], str(row["unit"])),
                **m,
                "volume": ratio(m["received"], busiest),
                "ontime_handle_rate": m["handle_ontime_rate"],
                "no_rework_rate": _one_minus(m["rework_rate"]),
            }
        )
    return _scored(out, conf.get("unit_weights"))


def unit_league(
    *, scope: Grid | None, start: date, end: date, limit: int | None = None
) -> list[dict[str, Any]]:
    """The unit league table of the dashboards: ``unit_evaluation``, best first."""
    rows = unit_evaluation(scope=scope, start=start, end=end)
    return rows[:limit] if limit else rows


# -- areas ------------------------------------------------------------------------------------
def area_evaluation(
    *, parent: Grid | None, start: date, end: date, level: int | None = None
) -> list[dict[str, Any]]:
    """The areas of ``level`` under ``parent`` (default: its children): 监督举报率,
    结案率, 按期结案率, composite score (``area_weights``), band and rank."""
    rows = grid_values(parent=parent, start=start, end=end, level=level)
    for row in rows:
        row["inspector_found_rate"] = _one_minus(row["supervision_rate"])
    return _scored(rows, conf.get("area_weights"))


# -- positions ----------------------------------------------------------------------------------
_STAGE_RATES = tuple((f"{s}_ontime_rate", f"{s}_ontime", f"{s}_timed") for s in STAGES)


def person_rates(c: Mapping[str, int], rule: Rules | None = None) -> dict[str, float | None]:
    """The rates of one person's counters."""
    dispatches, reports, verifies = c["dispatches"], c["reports"], c["verifies"]
    if (rule or rules()).accurate_dispatch == "minus_rework":
        accurate = dispatches - c["reworked_dispatches"]
    else:
        accurate = c["accurate_dispatches"]
    rates: dict[str, float | None] = {
        "valid_report_rate": c["valid_reports"] / reports if reports else None,
        "accurate_dispatch_rate": accurate / dispatches if dispatches else None,
        "verify_fail_rate": c["verify_fails"] / verifies if verifies else None,
    }
    for name, ontime, timed in _STAGE_RATES:
        rates[name] = c[ontime] / c[timed] if c[timed] else None
    return rates


def _person_rows(scope: Grid | None, start: date, end: date, role: str) -> list[tuple[Any, ...]]:
    """Each person's summed counters in ``role`` with their username and name: one
    query (``PersonRollup``, or the facts below its levels)."""
    levels = {int(level) for level in conf.get("rollup_levels")}
    model: Any = PersonRollup
    if scope is None:
        where = Where().equal("level", 0).periods(start, end)
    elif scope.level in levels:
        where = Where().equal("node", scope.pk).periods(start, end)
    else:
        model = PersonFact
        where = Where().equal(f"node{scope.level}", scope.pk).days("day", start, end)
    where.equal("role", role)
    q = connection.ops.quote_name
    user = q("user")
    summed, params = summed_sql(model, ["user"], where, PERSON_COUNTERS)
    sql = (
        f"SELECT s.*, u.{q('username')}, u.{q('display_name')} FROM ({summed}) s "  # noqa: S608
        f"LEFT JOIN {q(User._meta.db_table)} u ON u.{q('id')} = s.{user} ORDER BY s.{user}"
    )
    with read_cursor(model) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def position_evaluation(
    *, scope: Grid | None, start: date, end: date, role: str
) -> list[dict[str, Any]]:
    """Everyone who acted in ``role`` on cases of the scope during the period (by the
    day they acted): their counts, rates, composite score (``position_weights``),
    band and rank. Grid workers: 有效上报率 and 按时核查率; call-takers: 按时受理率;
    dispatchers: 按时派遣率 and 准确派遣率; unit staff: 按时签收率 and 按期处置率."""
    rule = rules()
    role_label = str(Role(role).label) if role in Role.values else role
    names = ("user_id", *PERSON_COUNTERS)
    last = len(names)
    rows = []
    for found in _person_rows(scope, start, end, role):
        row: dict[str, Any] = dict(zip(names, found[:last], strict=True))
        row.update(person_rates(row, rule))
        username, display_name = found[last], found[last + 1]
        row["key"] = key = username if username is not None else str(row["user_id"])
        row["name"] = display_name or key
        row["role"] = role
        row["role_label"] = role_label
        rows.append(row)
    weights = conf.get("position_weights").get(role, {})
    return _scored(rows, weights)


# -- the 12345 KPIs ------------------------------------------------------------------------------
HOTLINE_KPIS = (
    "received",
    "closed",
    "in_progress",
    "acknowledge_ontime_rate",
    "ontime_finish_rate",
    "close_rate",
    "follow_up_rate",
    "satisfaction_rate",
    "satisfaction_score",
    "reopen_rate",
)


def hotline_kpis(*, scope: Grid | None, start: date, end: date) -> dict[str, Any]:
    """按时签收率, 按时办结率, 办结率, 回访率, 满意率 and 重办率 of the 12345 work
    orders (``hotline_channels``) taken in during the period."""
    m = totals(scope=scope, start=start, end=end, filters=hotline_filters())
    return {name: m[name] for name in HOTLINE_KPIS}


__all__ = [
    "HOTLINE_KPIS",
    "area_evaluation",
    "composite",
    "hotline_kpis",
    "person_rates",
    "position_evaluation",
    "unit_evaluation",
    "unit_league",
]

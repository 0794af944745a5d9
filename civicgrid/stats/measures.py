"""Measures and KPIs from summed counters: every formula of ``docs/statistics.md``.

``measures(counters)`` turns one row of summed case counters into the figures a
table, a chart or an export shows: counts, rates in 0..1 (``None`` when the
denominator is zero) and hours. It is the only place a formula is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from civicgrid.stats import conf
from civicgrid.stats.counters import DURATION_BOUNDS_HOURS, DURATION_BUCKETS, STAGES

COUNT, RATE, HOURS, SCORE = "count", "rate", "hours", "score"

#: What each measure is called and how it is formatted (count, rate, hours, score).
MEASURES: dict[str, tuple[Promise, str]] = {
    "received": (_("接办"), COUNT),
    "closed": (_("办结"), COUNT),
    "in_progress": (_("在办"), COUNT),
    "rejected": (_("不予受理"), COUNT),
    "voided": (_("作废"), COUNT),
    "merged": (_("并单"), COUNT),
    "parked": (_("挂账"), COUNT),
    "deferred": (_("缓办"), COUNT),
    "due_to_close": (_("应结案"), COUNT),
    "close_rate": (_("结案率"), RATE),
    "closed_ontime": (_("按期结案"), COUNT),
    "ontime_close_rate": (_("按期结案率"), RATE),
    "overdue": (_("超期"), COUNT),
    "overdue_open": (_("在办超期"), COUNT),
    "overdue_rate": (_("超期率"), RATE),
    "accept_ontime_rate": (_("按时受理率"), RATE),
    "dispatch_ontime_rate": (_("按时派遣率"), RATE),
    "acknowledge_ontime_rate": (_("按时签收率"), RATE),
    "handle_ontime_rate": (_("按期处置率"), RATE),
    "verify_ontime_rate": (_("按时核查率"), RATE),
    "close_ontime_rate": (_("按时结案率"), RATE),
    "ontime_finish_rate": (_("按时办结率"), RATE),
    "mean_hours": (_("平均办理时长（小时）"), HOURS),
    "median_hours": (_("办理时长中位数（小时）"), HOURS),
    "p90_hours": (_("办理时长90分位（小时）"), HOURS),
    "mean_work_hours": (_("平均办理工作时（小时）"), HOURS),
    "filed": (_("立案"), COUNT),
    "supervision_rate": (_("监督举报率"), RATE),
    "dispatches": (_("派遣次数"), COUNT),
    "accurate_dispatch_rate": (_("准确派遣率"), RATE),
    "sent_back": (_("回退"), COUNT),
    "send_back_rate": (_("回退率"), RATE),
    "handled": (_("处置数"), COUNT),
    "reworked": (_("返工"), COUNT),
    "rework_rate": (_("返工率"), RATE),
    "extensions": (_("延期"), COUNT),
    "extension_rate": (_("延期率"), RATE),
    "urged": (_("督办"), COUNT),
    "followed_up": (_("回访"), COUNT),
    "follow_up_rate": (_("回访率"), RATE),
    "satisfied": (_("满意"), COUNT),
    "satisfaction_rate": (_("满意率"), RATE),
    "satisfaction_score": (_("满意度得分"), SCORE),
    "reopened": (_("重办"), COUNT),
    "reopen_rate": (_("重办率"), RATE),
    "sat_5": (_("非常满意"), COUNT),
    "sat_4": (_("满意（五级）"), COUNT),
    "sat_3": (_("基本满意"), COUNT),
    "sat_2": (_("不满意"), COUNT),
    "sat_1": (_("非常不满意"), COUNT),
}


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def percentile_hours(histogram: Sequence[int], q: float) -> float | None:
    """The ``q``-quantile (0..1) of handling time from the histogram, interpolating
    linearly inside its bucket; in the open last bucket, that bucket's lower bound."""
    return _percentile(histogram, sum(histogram), q)


def _percentile(histogram: Sequence[int], total: int, q: float) -> float | None:
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = DURATION_BOUNDS_HOURS[index - 1] if index else 0
            if index >= len(DURATION_BOUNDS_HOURS):
                return float(low)
            high = DURATION_BOUNDS_HOURS[index]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(DURATION_BOUNDS_HOURS[-1])  # pragma: no cover - rank <= total


@dataclass(frozen=True)
class Rules:
    """The settings the formulas read (``conf``), read once for a table of rows."""

    satisfied: frozenset[int]
    scores: dict[int, float]
    exclude_parked: bool
    exclude_deferred: bool
    accurate_dispatch: str


_rules: tuple[dict[str, Any], Rules] | None = None


def rules() -> Rules:
    """The rules of the settings in force (read again when they change)."""
    global _rules
    current = conf.conf()
    if _rules is not None and _rules[0] is current:
        return _rules[1]
    denominators = current["denominators"]
    found = Rules(
        satisfied=frozenset(int(level) for level in current["satisfied_levels"]),
        scores={int(k): float(v) for k, v in current["satisfaction_scores"].items()},
        exclude_parked=bool(denominators.get("exclude_parked")),
        exclude_deferred=bool(denominators.get("exclude_deferred")),
        accurate_dispatch=str(current["accurate_dispatch"]),
    )
    _rules = (current, found)
    return found


def due_to_close(c: Mapping[str, int], rule: Rules | None = None) -> int:
    """应结案数: cases taken in, less those not accepted, voided or merged, and, as
    the settings say, the open ones parked (挂账) or deferred (缓办)."""
    rule = rule or rules()
    due = c["received"] - c["rejected"] - c["voided"] - c["merged"]
    if rule.exclude_parked:
        due -= c["parked"]
    if rule.exclude_deferred:
        due -= c["deferred"]  # open, extended, not parked: never counted twice
    return max(due, 0)


def stage_rate(c: Mapping[str, int], stage: str) -> float | None:
    """On-time share of a stage: finished in time / (finished + late and unfinished)."""
    return ratio(c[f"{stage}_ontime"], c[f"{stage}_done"] + c[f"{stage}_overdue_open"])


_histogram = itemgetter(*DURATION_BUCKETS)
_stage_keys = {
    stage: (f"{stage}_ontime", f"{stage}_done", f"{stage}_overdue_open") for stage in STAGES
}


def measures(c: Mapping[str, int], rule: Rules | None = None) -> dict[str, Any]:
    """Every measure of ``MEASURES`` from one row of summed case counters (``rule``:
    the settings, when many rows are measured at once).

    Called for every row of every table (365 days of a trend, 325 grids), so written
    flat: each formula is the one of ``ratio``, ``due_to_close`` and ``stage_rate``."""
    rule = rule or rules()
    received, closed, dispatches = c["received"], c["closed"], c["dispatches"]
    due = received - c["rejected"] - c["voided"] - c["merged"]
    if rule.exclude_parked:
        due -= c["parked"]
    if rule.exclude_deferred:
        due -= c["deferred"]
    due = max(due, 0)
    histogram = _histogram(c)
    timed = sum(histogram)
    sat_1, sat_2, sat_3, sat_4, sat_5 = c["sat_1"], c["sat_2"], c["sat_3"], c["sat_4"], c["sat_5"]
    satisfied = sum(c[f"sat_{level}"] for level in rule.satisfied)
    rated = sat_1 + sat_2 + sat_3 + sat_4 + sat_5
    scores = rule.scores
    if rule.accurate_dispatch == "minus_rework":
        accurate = dispatches - c["reworked_dispatches"]
    else:
        accurate = c["accurate_dispatches"]
    closed_ontime, filed, handled, ever_closed = (
        c["closed_ontime"],
        c["filed"],
        c["handled"],
        c["ever_closed"],
    )
    stage = {}
    for name, (ontime, done, overdue_open) in _stage_keys.items():
        timed_stage = c[done] + c[overdue_open]
        stage[name] = c[ontime] / timed_stage if timed_stage else None
    return {
        "received": received,
        "closed": closed,
        "in_progress": c["open"],
        "rejected": c["rejected"],
        "voided": c["voided"],
        "merged": c["merged"],
        "parked": c["parked"],
        "deferred": c["deferred"],
        "due_to_close": due,
        "close_rate": closed / due if due else None,
        "closed_ontime": closed_ontime,
        "ontime_close_rate": closed_ontime / due if due else None,
        "overdue": c["overdue"],
        "overdue_open": c["overdue_open"],
        "overdue_rate": c["overdue"] / received if received else None,
        "ontime_finish_rate": closed_ontime / closed if closed else None,
        "mean_hours": c["handle_seconds"] / 3600 / closed if closed else None,
        "median_hours": _percentile(histogram, timed, 0.5),
        "p90_hours": _percentile(histogram, timed, 0.9),
        "mean_work_hours": c["work_seconds"] / 3600 / closed if closed else None,
        "filed": filed,
        "supervision_rate": c["filed_public"] / filed if filed else None,
        "dispatches": dispatches,
        "accurate_dispatch_rate": accurate / dispatches if dispatches else None,
        "sent_back": c["sent_back"],
        "send_back_rate": c["sent_back"] / dispatches if dispatches else None,
        "handled": handled,
        "reworked": c["reworked"],
        "rework_rate": c["reworked"] / handled if handled else None,
        "extensions": c["extensions"],
        "extension_rate": c["extended_cases"] / received if received else None,
        "urged": c["urged"],
        "followed_up": c["followed_up"],
        "follow_up_rate": c["followed_up"] / ever_closed if ever_closed else None,
        "satisfied": satisfied,
        "satisfaction_rate": satisfied / rated if rated else None,
        "satisfaction_score": (
            sum(
                (
                    scores.get(1, 0.0) * sat_1,
                    scores.get(2, 0.0) * sat_2,
                    scores.get(3, 0.0) * sat_3,
                    scores.get(4, 0.0) * sat_4,
                    scores.get(5, 0.0) * sat_5,
                )
            )
            / rated
            if rated
            else None
        ),
        "reopened": c["reopened_cases"],
        "reopen_rate": c["reopened_cases"] / ever_closed if ever_closed else None,
        "accept_ontime_rate": stage["accept"],
        "dispatch_ontime_rate": stage["dispatch"],
        "acknowledge_ontime_rate": stage["acknowledge"],
        "handle_ontime_rate": stage["handle"],
        "verify_ontime_rate": stage["verify"],
        "close_ontime_rate": stage["close"],
        "sat_1": sat_1,
        "sat_2": sat_2,
        "sat_3": sat_3,
        "sat_4": sat_4,
        "sat_5": sat_5,
    }


def label(name: str) -> str:
    return str(MEASURES[name][0])


def kind(name: str) -> str:
    return MEASURES[name][1] if name in MEASURES else COUNT

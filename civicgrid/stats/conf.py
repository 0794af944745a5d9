"""Every number of the statistics that a centre may want differently: data, not code.

The defaults below are merged with ``settings.CIVICGRID_STATS`` (a dict) and then
with the JSON file named by ``settings.CIVICGRID_STATS_CONFIG`` (empty: none), key
by key, nested dicts merged too. ``docs/statistics.md`` explains every key.

Three keys shape what the facts and rollups hold (``public_channels``,
``dim_levels`` and ``rollup_levels``); after changing them run ``civicgrid stats
rebuild --refresh``. Every other key is read when a figure is computed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

DEFAULTS: dict[str, Any] = {
    # Channels whose cases are reports by the public (监督举报率's numerator).
    "public_channels": ["hotline", "web", "api"],
    # Channels whose cases are 12345 work orders (the hotline KPIs).
    "hotline_channels": ["hotline"],
    # Grid levels the rollups are kept for (0 district, 1 subdistrict, 2 community,
    # 3 grid; totals and trends are kept for all): breakdowns by one dimension
    # (category, unit, channel, request type), and the cube of all four with the
    # people's rollup. A deeper scope is summed from the per-case facts of its node
    # (a community's few thousand a year); adding 2 to dim_levels trades storage
    # (a row per community, day and value) for faster community breakdowns.
    "dim_levels": [0, 1],
    "rollup_levels": [0, 1],
    # Domains (业务领域) as category kinds: 城市管理 is the 数字城管 catalogue of
    # components and events (GB/T 30428.2); 12345 诉求 categories are the rest.
    "domains": [
        {"key": "urban", "name": _("城市管理"), "kinds": ["component", "event"]},
        {"key": "public_service", "name": _("民生诉求"), "kinds": ["request"]},
    ],
    # Topics (热点) that group categories; a 大类 code stands for all its 小类.
    "topics": [
        {"key": "noise", "name": _("噪音扰民"), "codes": ["SJ0601", "SJ0602", "SJ0603", "SJ0604"]},
        {"key": "vending", "name": _("占道经营（摆摊设点）"), "codes": ["SJ0502"]},
        {"key": "appearance", "name": _("市容环境（市容市貌）"), "codes": ["SJ01", "BJ03"]},
    ],
    # Satisfaction: the five levels (5 非常满意 … 1 非常不满意), which count as
    # satisfied for 满意率, and the score of each for 满意度得分.
    "satisfied_levels": [4, 5],
    "satisfaction_scores": {"5": 100, "4": 80, "3": 60, "2": 30, "1": 0},
    # Whether open cases that are parked (挂账) or deferred (缓办: an approved
    # extension) leave the denominators of 结案率 and 按期结案率 (应结案数).
    "denominators": {"exclude_parked": False, "exclude_deferred": False},
    # 准确派遣率: "not_sent_back" (dispatches not sent back / dispatches) or
    # "minus_rework" ((dispatches − their reworks) / dispatches, the older rule).
    "accurate_dispatch": "not_sent_back",
    # Composite scores: weights (any positive numbers; they are normalised) of rates
    # in 0..1. "volume" is a unit's cases relative to the busiest unit's.
    "unit_weights": {
        "volume": 10,
        "close_rate": 30,
        "ontime_handle_rate": 30,
        "no_rework_rate": 30,
    },
    "area_weights": {"close_rate": 50, "ontime_close_rate": 50},
    "position_weights": {
        "grid_worker": {"valid_report_rate": 50, "verify_ontime_rate": 50},
        "call_taker": {"accept_ontime_rate": 100},
        "dispatcher": {"dispatch_ontime_rate": 50, "accurate_dispatch_rate": 50},
        "unit_handler": {"acknowledge_ontime_rate": 50, "handle_ontime_rate": 50},
        "supervisor": {"close_ontime_rate": 100},
    },
    # Score bands, highest first: a score at or above ``min`` gets the band.
    "bands": [
        {"min": 90, "name": _("优秀"), "color": "#1a9850"},
        {"min": 80, "name": _("良好"), "color": "#91cf60"},
        {"min": 60, "name": _("合格"), "color": "#fee08b"},
        {"min": 0, "name": _("不合格"), "color": "#d73027"},
    ],
    # The periodic rebuild: how many days back (today included) and how often.
    "rebuild_days": 2,
    "rebuild_every_seconds": 3600,
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Band:
    min: float
    name: str
    color: str


@lru_cache(maxsize=8)
def _load(inline: str, path: str) -> dict[str, Any]:
    merged = _merge(copy.deepcopy(DEFAULTS), json.loads(inline))
    if path:
        merged = _merge(merged, json.loads(Path(path).read_text(encoding="utf-8")))
    return merged


def conf() -> dict[str, Any]:
    """The statistics settings in force (cached per settings value)."""
    inline = json.dumps(getattr(settings, "CIVICGRID_STATS", {}) or {}, default=str)
    path = getattr(settings, "CIVICGRID_STATS_CONFIG", "") or ""
    return _load(inline, str(path))


def get(key: str) -> Any:
    return conf()[key]


def bands() -> list[Band]:
    found = [Band(float(b["min"]), str(b["name"]), str(b["color"])) for b in get("bands")]
    return sorted(found, key=lambda b: -b.min)


def band_of(score: float | None, among: list[Band] | None = None) -> Band | None:
    """The band a score falls in (``among``: ``bands()``, read once for many scores)."""
    if score is None:
        return None
    for band in among if among is not None else bands():
        if score >= band.min:
            return band
    return None

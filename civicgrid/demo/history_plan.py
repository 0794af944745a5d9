"""How many cases, of what, where and when: the plan of the demo district's 2020.

The plan fixes, by construction, the figures the statistics must then find in the
rows: how many hotline cases are taken in (``Figures.received``), how many of
them are 城市管理 cases (a category of the kinds of the ``urban`` domain of
``stats.conf``: the 数字城管 components and events), and how many of each end
closed. Everything else is drawn from a seeded random source: the day of each
case (fewer at weekends and holidays, fewest at the Spring Festival, a seasonal
year), its category (each with its season: ice in winter, noise and vending in
summer, heating complaints from November to March, school admissions in summer,
the epidemic's enquiries in February), its hour, its grid (by households), its
place within the grid and its words. Which cases are still open at the end of the
history is drawn too, mostly among the most recent.

``plan_window`` plans a window of days up to a moment instead (the demo's present,
``recent``) from daily rates by channel (``Rates``) rather than published totals:
hotline cases as the history's, grid workers' reports on their rounds (urban
categories, some fixed on the spot) and reports from the citizens' portal. Nothing
is forced to end open or closed there: every story is told as it comes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from django.utils import timezone

from civicgrid.cases.models import Channel
from civicgrid.demo import history_data as data
from civicgrid.demo.history_engine import Intake
from civicgrid.demo.history_story import Plan
from civicgrid.demo.people import GIVEN_FEMALE, GIVEN_MALE, MOBILE_PREFIXES, SURNAMES

T = TypeVar("T")
_HOURS = {name: list(itertools.accumulate(shares)) for name, shares in data.HOURS.items()}
TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: No case is taken in during the last minutes of the history (it could not close).
QUIET_END = timedelta(minutes=15)


@dataclass(frozen=True)
class Figures:
    """The published figures of the seed district's 2020 (or a scaled copy)."""

    received: int = 61_802
    closed: int = 60_872
    urban_received: int = 11_467
    urban_closed: int = 11_366

    def scaled(self, scale: float) -> Figures:
        if scale == 1:
            return self
        out = Figures(
            received=round(self.received * scale),
            closed=round(self.closed * scale),
            urban_received=round(self.urban_received * scale),
            urban_closed=round(self.urban_closed * scale),
        )
        if out.received < 40:
            raise ValueError(f"scale {scale} is too small: every unit needs cases")
        return out

    @property
    def open(self) -> int:
        return self.received - self.closed

    @property
    def urban_open(self) -> int:
        return self.urban_received - self.urban_closed


@dataclass(frozen=True)
class GridInfo:
    id: int
    path: str
    code: str
    name: str
    community: str
    subdistrict_id: int
    subdistrict: str
    households: int


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    code: str
    name: str
    kind: str
    major: str


@dataclass
class PlanContext:
    """What planning reads from the world (``history.World`` provides it)."""

    start: date
    end: date
    #: The moment the history ends (exclusive): midnight after ``end``.
    until: datetime
    grids: list[GridInfo]
    points: dict[int, list[tuple[float, float]]]
    categories: dict[str, CategoryInfo]
    urban_kinds: frozenset[str]
    units: dict[int, str]
    call_takers: list[int]
    is_workday: Callable[[date], bool]
    suggest: Callable[[int, int], int | None]
    unit_serves: dict[int, str]

    @property
    def categories_by_id(self) -> dict[int, CategoryInfo]:
        return {c.id: c for c in self.categories.values()}


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights``, in whole numbers (largest remainder)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def pick(rng: random.Random, weights: Sequence[float], k: int) -> set[int]:
    """``k`` indices drawn without replacement with the given weights (Efraimidis–Spirakis)."""
    keys = sorted(
        ((rng.random() ** (1 / w) if w > 0 else 0.0, i) for i, w in enumerate(weights)),
        reverse=True,
    )
    return {i for _key, i in keys[:k]}


def _day_weights(ctx: PlanContext, rng: random.Random) -> list[tuple[date, float]]:
    festival_from, festival_to, festival = data.SPRING_FESTIVAL
    out = []
    day = ctx.start
    while day <= ctx.end:
        weight = data.WEEKDAYS[day.weekday()] * data.MONTHS[day.month - 1]
        if date.fromisoformat(festival_from) <= day <= date.fromisoformat(festival_to):
            weight *= festival / data.WEEKDAYS[day.weekday()]
        elif day.weekday() < 5 and not ctx.is_workday(day):
            weight *= data.HOLIDAY / data.WEEKDAYS[day.weekday()]
        elif day.weekday() >= 5 and ctx.is_workday(day):  # a make-up workday (调休)
            weight = data.WEEKDAYS[0] * data.MONTHS[day.month - 1] * 0.9
        out.append((day, weight * rng.lognormvariate(0, 0.08)))
        day += timedelta(days=1)
    return out


def _category_tables(
    ctx: PlanContext,
) -> dict[bool, list[tuple[CategoryInfo, tuple[float, ...], str]]]:
    tables: dict[bool, list[tuple[CategoryInfo, tuple[float, ...], str]]] = {True: [], False: []}
    for table in (data.URBAN, data.REQUESTS):
        for code, (weight, season, hours) in table.items():
            category = ctx.categories.get(code)
            if category is None:
                continue
            monthly = tuple(weight * f for f in data.SEASONS[season])
            tables[category.kind in ctx.urban_kinds].append((category, monthly, hours))
    for urban, rows in tables.items():
        if not rows:
            raise ValueError(f"no categories for the {'urban' if urban else 'request'} domain")
    return tables


def plan_cases(ctx: PlanContext, figures: Figures, *, seed: int, prefix: str) -> list[Plan]:
    """Every case of the history, in the order they are taken in."""
    rng = random.Random(f"history:{seed}")
    days = _day_weights(ctx, rng)
    per_day = allocate(figures.received, [w for _d, w in days])
    slots = [day for (day, _w), n in zip(days, per_day, strict=True) for _ in range(n)]
    tables = _category_tables(ctx)
    month_weight = {
        urban: [sum(m[month] for _c, m, _h in rows) for month in range(12)]
        for urban, rows in tables.items()
    }
    urban_share = [
        month_weight[True][m] / (month_weight[True][m] + month_weight[False][m]) for m in range(12)
    ]
    urban = pick(
        rng,
        [urban_share[d.month - 1] / (1 - urban_share[d.month - 1]) for d in slots],
        figures.urban_received,
    )
    cumulative = {
        (is_urban, month): list(itertools.accumulate(m[month] for _c, m, _h in rows))
        for is_urban, rows in tables.items()
        for month in range(12)
    }
    drafts = []
    for index, day in enumerate(slots):
        is_urban = index in urban
        rows = tables[is_urban]
        weights = cumulative[(is_urban, day.month - 1)]
        category, _monthly, hours = rng.choices(rows, cum_weights=weights)[0]
        drafts.append((_moment(ctx, day, hours, rng), is_urban, category))
    drafts.sort(key=lambda d: d[0])
    grid_weights = [max(g.households, 50) for g in ctx.grids]
    grids = rng.choices(ctx.grids, grid_weights, k=len(drafts))
    open_cases = _open_set(ctx, drafts, figures, rng)
    plans = []
    for n, ((received_at, _urban, category), grid) in enumerate(zip(drafts, grids, strict=True)):
        plans.append(
            _plan(ctx, rng, n, received_at, category, grid, n in open_cases, prefix=prefix)
        )
    _involve_every_unit(ctx, plans, tables, rng)
    return plans


def _moment(ctx: PlanContext, day: date, hours: str, rng: random.Random) -> datetime:
    while True:
        hour = rng.choices(range(24), cum_weights=_HOURS[hours])[0]
        moment = timezone.make_aware(
            datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60))),
            timezone.get_default_timezone(),
        )
        if moment < ctx.until - QUIET_END:
            return moment


def _open_set(
    ctx: PlanContext,
    drafts: list[tuple[datetime, bool, CategoryInfo]],
    figures: Figures,
    rng: random.Random,
) -> set[int]:
    """Which cases are still open at the end: mostly the last days' (faster for the
    city-management cases, whose time limits are hours rather than days)."""
    chosen: set[int] = set()
    for is_urban, count, days in (
        (True, figures.urban_open, 2.5),
        (False, figures.open - figures.urban_open, 5.0),
    ):
        members = [i for i, d in enumerate(drafts) if d[1] is is_urban]
        weights = [
            math.exp(-(ctx.until - drafts[i][0]).total_seconds() / 86400 / days) + 0.003
            for i in members
        ]
        chosen |= {members[j] for j in pick(rng, weights, count)}
    return chosen


def _person(rng: random.Random) -> str:
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.45:
        return surname + rng.choice(("先生", "女士"))
    given = GIVEN_FEMALE if rng.random() < 0.5 else GIVEN_MALE
    return surname + "".join(rng.choice(given) for _ in range(1 if rng.random() < 0.3 else 2))


def _lookup(table: Mapping[str, T], category: CategoryInfo) -> T | None:
    """The entry of the category, else of its 大类, else of its kind's prefix."""
    for key in (category.code, category.major, category.code[:4], category.code[:2]):
        if key in table:
            return table[key]
    return None


def _plan(
    ctx: PlanContext,
    rng: random.Random,
    n: int,
    received_at: datetime,
    category: CategoryInfo,
    grid: GridInfo,
    open_at_end: bool,
    *,
    prefix: str,
) -> Plan:
    lon, lat = rng.choice(ctx.points[grid.id])
    place = rng.choice(data.PLACES) + rng.choice(data.BUILDINGS)
    words = data.DESCRIPTIONS.get(category.code) or data.DESCRIPTIONS.get(category.major)
    description = rng.choice(words or data.DEFAULT_DESCRIPTION).format(
        place=place, name=category.name
    )
    urgent, emergency = _lookup(data.URGENT, category) or data.DEFAULT_URGENT
    roll = rng.random()
    urgency = (
        "emergency" if roll < emergency else "urgent" if roll < emergency + urgent else "normal"
    )
    kinds = _lookup(data.REQUEST_TYPES, category) or {"complaint": 1.0}
    request_type = rng.choices(list(kinds), list(kinds.values()))[0]
    suggested = ctx.suggest(category.id, grid.id)
    unit = suggested or next(iter(ctx.units))
    intake = Intake(
        external_id=f"{prefix}{n + 1:06d}",
        received_at=received_at,
        category_id=category.id,
        urgency=urgency,
        request_type=request_type,
        title=f"{place}{category.name}",
        description=description,
        address=f"七里河区{grid.subdistrict}{grid.community}{place}附近",
        lon=lon,
        lat=lat,
        grid_id=grid.id,
        grid_path=grid.path,
        requester_name=_person(rng),
        requester_phone=rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}",
        call_taker=rng.choice(ctx.call_takers),
        suggested_unit_id=suggested,
        tracking_code="".join(rng.choice(TRACKING_ALPHABET) for _ in range(10)),
    )
    others = [u for u in ctx.units if u != unit]
    return Plan(
        intake=intake,
        code=category.code,
        major=category.major,
        unit=unit,
        wrong_units=rng.sample(others, min(2, len(others))),
        parkable=category.code in data.PARKABLE,
        open_at_end=open_at_end,
    )


def _involve_every_unit(
    ctx: PlanContext,
    plans: list[Plan],
    tables: dict[bool, list[tuple[CategoryInfo, tuple[float, ...], str]]],
    rng: random.Random,
) -> None:
    """Give a unit no case went to one: a closed case in its area, of a category of the
    same domain that the dispatch catalogue routes to it."""
    led = Counter(p.unit for p in plans)
    for unit in sorted(ctx.units):
        if led[unit]:
            continue
        candidates = [
            p
            for p in plans
            if not p.open_at_end
            and p.intake.grid_path.startswith(ctx.unit_serves[unit])
            and led[p.unit] > 1
        ]
        rng.shuffle(candidates)
        by_id = ctx.categories_by_id
        for p in candidates:
            urban = by_id[p.intake.category_id].kind in ctx.urban_kinds
            fitting = [
                c for c, _m, _h in tables[urban] if ctx.suggest(c.id, p.intake.grid_id) == unit
            ]
            if fitting:
                category = rng.choice(fitting)
                old = by_id[p.intake.category_id]
                led[p.unit] -= 1
                p.intake.title = p.intake.title.replace(old.name, category.name)
                p.intake.description = (
                    f"市民反映{p.intake.address}存在{category.name}问题，请尽快处理"
                )
                p.intake.category_id = category.id
                p.intake.suggested_unit_id = unit
                p.code, p.major, p.unit = category.code, category.major, unit
                p.wrong_units = [u for u in p.wrong_units if u != unit] or [
                    u for u in ctx.units if u != unit
                ][:1]
                led[unit] += 1
                break
        else:
            raise ValueError(f"no case can go to unit {ctx.units[unit]}")


# -- a window up to now ---------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    """Cases taken in a day by each channel, averaged over an ordinary week."""

    hotline: float = 170.0
    grid_worker: float = 45.0
    web: float = 12.0
    #: Share of grid workers' reports fixed on the spot (自处理).
    self_handled: float = 0.3

    def scaled(self, scale: float) -> Rates:
        return Rates(
            self.hotline * scale, self.grid_worker * scale, self.web * scale, self.self_handled
        )


#: Each channel's rhythm: weekday factors, factor on a holiday, hours profile (``None``:
#: the category's).
RHYTHMS: dict[str, tuple[tuple[float, ...], float, str | None]] = {
    Channel.HOTLINE: (data.WEEKDAYS, data.HOLIDAY, None),
    Channel.GRID_WORKER: (data.PATROL_WEEKDAYS, 0.25, "patrol"),
    Channel.WEB: (data.PORTAL_WEEKDAYS, 1.0, "evening"),
}


def _day_factor(ctx: PlanContext, day: date, weekdays: tuple[float, ...], holiday: float) -> float:
    """A day's share of an ordinary week's average day."""
    weight = weekdays[day.weekday()]
    if day.weekday() < 5 and not ctx.is_workday(day):
        weight = holiday
    elif day.weekday() >= 5 and ctx.is_workday(day):  # a make-up workday (调休)
        weight = weekdays[0] * 0.9
    months = data.MONTHS[day.month - 1] * 12 / sum(data.MONTHS)
    return weight * 7 / sum(weekdays) * months


def plan_window(
    ctx: PlanContext,
    rates: Rates,
    *,
    seed: int,
    prefix: str,
    workers: Mapping[int, Sequence[int]],
) -> list[Plan]:
    """Every case taken in from ``ctx.start`` to ``ctx.until`` (exclusive), in order.

    ``workers``: the grid workers of each grid (who report from it)."""
    rng = random.Random(f"window:{seed}:{ctx.until.isoformat()}")
    tables = _category_tables(ctx)
    both = tables[True] + tables[False]
    cumulative = {
        (key, month): list(itertools.accumulate(m[month] for _c, m, _h in rows))
        for key, rows in (("urban", tables[True]), ("other", tables[False]), ("both", both))
        for month in range(12)
    }
    urban_share = [cumulative[("urban", m)][-1] / cumulative[("both", m)][-1] for m in range(12)]
    drafts: list[tuple[datetime, str, CategoryInfo]] = []
    zone = timezone.get_default_timezone()
    channels: tuple[tuple[str, float], ...] = (
        (Channel.HOTLINE, rates.hotline),
        (Channel.GRID_WORKER, rates.grid_worker),
        (Channel.WEB, rates.web),
    )
    for channel, rate in channels:
        weekdays, holiday, profile = RHYTHMS[channel]
        day = ctx.start
        while day <= ctx.end:
            factor = _day_factor(ctx, day, weekdays, holiday) * rng.lognormvariate(0, 0.1)
            for _n in range(round(rate * factor)):
                month = day.month - 1
                if channel == Channel.GRID_WORKER:
                    key = "urban"
                elif channel == Channel.WEB:
                    key = "both"
                else:
                    key = "urban" if rng.random() < urban_share[month] else "other"
                rows = {"urban": tables[True], "other": tables[False], "both": both}[key]
                category, _monthly, hours = rng.choices(rows, cum_weights=cumulative[(key, month)])[
                    0
                ]
                hour = rng.choices(range(24), cum_weights=_HOURS[profile or hours])[0]
                moment = timezone.make_aware(
                    datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60))), zone
                )
                if moment < ctx.until:  # the rest of today has not happened yet
                    drafts.append((moment, channel, category))
            day += timedelta(days=1)
    drafts.sort(key=lambda d: (d[0], d[1]))
    by_households = [max(g.households, 50) for g in ctx.grids]
    patrolled = [g for g in ctx.grids if workers.get(g.id)]
    plans = []
    for n, (received_at, planned, category) in enumerate(drafts):
        channel = planned
        if channel == Channel.GRID_WORKER and patrolled:
            grid = rng.choice(patrolled)
        else:
            grid = rng.choices(ctx.grids, by_households)[0]
            channel = Channel.HOTLINE if channel == Channel.GRID_WORKER else channel
        plan = _plan(ctx, rng, n, received_at, category, grid, False, prefix=prefix)
        _by_channel(plan, channel, rng, workers, rates)
        plans.append(plan)
    return plans


def replan(ctx: PlanContext, plan: Plan, grid: GridInfo, rng: random.Random) -> Plan:
    """The same hotline case (external id, time, category) taken in from another grid."""
    n = int(plan.intake.external_id.rsplit("-", 1)[1]) - 1
    prefix = plan.intake.external_id[: -len(f"{n + 1:06d}")]
    category = ctx.categories_by_id[plan.intake.category_id]
    return _plan(ctx, rng, n, plan.intake.received_at, category, grid, False, prefix=prefix)


def _by_channel(
    plan: Plan,
    channel: str,
    rng: random.Random,
    workers: Mapping[int, Sequence[int]],
    rates: Rates,
) -> None:
    """What a grid worker's or a citizen's report carries, where the hotline's differs:
    no title, request type or urgency (the forms have none); a worker gives no address
    and no requester."""
    intake = plan.intake
    if channel == Channel.HOTLINE:
        return
    intake.channel = channel
    intake.title, intake.request_type, intake.urgency = "", "", "normal"
    if channel == Channel.GRID_WORKER:
        intake.reporter = rng.choice(list(workers[intake.grid_id]))
        intake.description = intake.description.replace("市民反映", "巡查发现", 1)
        intake.address = intake.requester_name = intake.requester_phone = ""
        if rng.random() < rates.self_handled:
            intake.result = rng.choice(data.SPOT_RESULTS)


__all__ = [
    "RHYTHMS",
    "Figures",
    "PlanContext",
    "Rates",
    "allocate",
    "pick",
    "plan_cases",
    "plan_window",
    "replan",
]

"""The demo district's present: the last two weeks of cases, up to now.

Without it every workbench of a fresh demo is empty. ``load_recent`` plans the
cases of a window of days ending now (``history_plan.plan_window``: about 170
hotline cases a day, grid workers' reports on their rounds, some fixed on the
spot, and reports from the citizens' portal, with the hours and weekdays of each
channel) and tells each case's story as it comes up to now on the history's
machinery (``history_story.tell_until`` on ``history_engine.CaseSim``): wherever a
story has got to at "now" is the case's state. So the queues hold what they hold
at that hour: at 10:00 on a Tuesday a few cases wait to be accepted, at 08:00 on a
Monday the weekend's do.

A few states are rare at any one moment (a case sent back and not yet
re-dispatched, a pending extension or void request…) or must be in a demo
persona's area (a case for ``gridworker`` to verify, an overdue one in the
``community``'s). ``WANTS`` asks for a few of each: a case of the right age is
told again with its story held at that point (``Plan.hold``, as if the next step
had not happened yet) and kept when it is there.

The rows are those the case services would write (cases, events, deadlines,
approvals, overdue marks, statistics facts), bulk-inserted, and the rollups of the
window's days rebuilt, all in one transaction. Cases are known by external id
``R-<seed>-<n>``: when any is present nothing is written, so ``civicgrid demo``
can run again; the history (``H2020-…``) neither sees nor minds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import random
import time as monotime
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from civicgrid.accounts.models import Membership, Role
from civicgrid.cases import workcalendar
from civicgrid.cases.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    Category,
    Channel,
    RoutingRule,
    Status,
    TimeLimit,
)
from civicgrid.cases.selectors import deadline_state
from civicgrid.demo import history
from civicgrid.demo.accounts import DEMO_ACCOUNTS
from civicgrid.demo.district import DEFAULT_SEED, DISTRICT_CODE
from civicgrid.demo.history_engine import CaseSim
from civicgrid.demo.history_plan import GridInfo, PlanContext, Rates, plan_window, replan
from civicgrid.demo.history_story import Detours, Plan, tell_until
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.stats.rollups import rebuild_rollups

PREFIX = "R-"
DAYS = 14
RATES = Rates()
DETOURS = Detours(reject=0.02, void=0.008)


class RecentError(Exception):
    """The present cannot be made (no demo district)."""


@dataclass
class RecentSummary:
    start: date
    now: datetime
    planned: int = 0
    existing: int = 0
    written: int = 0
    events: int = 0
    deadlines: int = 0
    approvals: int = 0
    #: Cases by status, and by channel, of what was written.
    statuses: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    #: The wants met (name → cases held there).
    held: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def recent_prefix(seed: int) -> str:
    return f"{PREFIX}{seed}-"


# -- what the present must show ----------------------------------------------------------------
@dataclass(frozen=True)
class Personas:
    """Where the demo accounts look: the grid worker's grids, the community's and the
    street's subtrees, the unit."""

    worker_grids: tuple[str, ...] = ()
    community: str = ""
    street: str = ""
    unit: int | None = None


Check = Callable[[CaseSim, datetime], bool]


@dataclass(frozen=True)
class Want:
    """``count`` cases whose story is held at ``hold`` and then passes ``check``."""

    name: str
    hold: str
    count: int
    check: Check
    #: How long before now the case came in.
    ages: tuple[timedelta, timedelta]
    #: Where: "worker" (the grid worker's grids), "community", or anywhere.
    place: str = ""
    #: Led by the demo unit.
    unit: bool = False
    #: The newest candidates first (else in random order).
    newest: bool = True
    #: How many candidates to try before giving up.
    tries: int = 60


def _status(*statuses: str) -> Check:
    return lambda sim, _now: sim.status in statuses


def _pending(kind: str) -> Check:
    return lambda sim, _now: any(
        a.kind == kind and a.status == ApprovalStatus.PENDING for a in sim.approvals
    )


def _colour(colour: str) -> Check:
    def check(sim: CaseSim, now: datetime) -> bool:
        running = sim.running()
        if sim.status != Status.IN_PROGRESS or running is None:
            return False
        state = deadline_state(started_at=running.started_at, due_at=sim.case.due_at, now=now)
        return state == colour

    return check


def _not_followed_up(sim: CaseSim, _now: datetime) -> bool:
    return sim.status == Status.CLOSED and sim.case.satisfaction is None


H, D = timedelta(hours=1), timedelta(days=1)
WANTS: tuple[Want, ...] = (
    Want("new", "accept", 3, _status(Status.NEW), (0 * H, D)),
    Want("filed", "dispatch", 3, _status(Status.FILED), (0 * H, D)),
    Want("returned", "returned", 2, _status(Status.RETURNED), (H, 2 * D)),
    Want("dispatched", "acknowledge", 2, _status(Status.DISPATCHED), (0 * H, D), unit=True),
    Want("in_progress", "handle", 2, _status(Status.IN_PROGRESS), (D, 3 * D), unit=True),
    Want("extension", "extension", 3, _pending(ApprovalKind.EXTENSION), (D, 4 * D), newest=False),
    Want("void", "void", 2, _pending(ApprovalKind.VOID), (2 * H, 2 * D)),
    Want("parked", "park", 2, _status(Status.PARKED), (2 * D, 10 * D), newest=False),
    Want("verify", "verify", 2, _status(Status.HANDLED), (D, 4 * D), place="worker"),
    Want("overdue", "handle", 2, _colour("red"), (8 * D, 13 * D), place="community", newest=False),
    Want("yellow", "handle", 3, _colour("yellow"), (D, 8 * D), newest=False, tries=300),
    Want("red", "handle", 3, _colour("red"), (7 * D, 13 * D), newest=False),
    Want("follow_up", "follow_up", 3, _not_followed_up, (D, 6 * D), newest=False, tries=200),
)


def personas(root: Grid) -> Personas:
    """The demo accounts' places, from their memberships (whatever the grid codes)."""
    by_name = {a.username: a for a in DEMO_ACCOUNTS}
    found: dict[str, list[tuple[str, str, int | None]]] = {}
    rows = Membership.objects.active().filter(user__username__in=list(by_name))
    for username, role, path, unit in rows.values_list(
        "user__username", "role", "grid__path", "unit_id"
    ):
        if role == by_name[username].role:
            found.setdefault(username, []).append((role, path or "", unit))

    def paths(username: str) -> tuple[str, ...]:
        return tuple(p for _r, p, _u in found.get(username, []) if p.startswith(root.path))

    units = [u for _r, _p, u in found.get("unit", []) if u is not None]
    return Personas(
        worker_grids=paths("gridworker"),
        community=next(iter(paths("community")), ""),
        street=next(iter(paths("street")), ""),
        unit=units[0] if units else None,
    )


# -- the world, without a query per case --------------------------------------------------------
def _prefill_time_limits(world: history.World) -> None:
    """``engine.time_limit`` of every category, urgency and stage, from one query: the
    subcategory's limit, else its 大类's, else ``CIVICGRID_DEFAULT_TIME_LIMITS``."""
    table = {
        (c, u, s): (Decimal(a), unit)
        for c, u, s, a, unit in TimeLimit.objects.values_list(
            "category_id", "urgency", "stage", "amount", "unit"
        )
    }
    defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
    for category in world.categories.values():
        for urgency, stages in defaults.items():
            for stage, (amount, unit) in stages.items():
                found = table.get((category.pk, urgency, stage))
                if found is None and category.parent_id is not None:
                    found = table.get((category.parent_id, urgency, stage))
                world._limits[(category.pk, urgency, stage)] = found or (
                    Decimal(str(amount)),
                    unit,
                )


def memory_suggester(
    categories: dict[int, Category], grids: list[GridInfo]
) -> Callable[[int, int], int | None]:
    """``routing.suggest``'s lead unit from two queries: the routing rules, the default
    units, the territorial fallback, in its order of precedence."""
    rules = list(
        RoutingRule.objects.filter(is_active=True, lead_unit__is_active=True)
        .order_by("pk")
        .values_list("category_id", "grid__path", "priority", "lead_unit_id")
    )
    units = list(
        HandlingUnit.objects.active().values_list("pk", "serves__path", "serves__level", "code")
    )
    paths_of = {g.id: g.path for g in grids}
    cache: dict[tuple[int, int], int | None] = {}

    def ancestors(path: str) -> set[str]:
        parts = [p for p in path.strip("/").split("/") if p]
        return {"/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))}

    def suggest(category_id: int, grid_id: int) -> int | None:
        key = (category_id, grid_id)
        if key in cache:
            return cache[key]
        paths = ancestors(paths_of[grid_id])
        category = categories[category_id]
        own = category.pk
        matching = [r for r in rules if r[0] in (own, category.parent_id) and r[1] in paths]
        lead: int | None = None
        if matching:
            lead = min(matching, key=lambda r: (-len(r[1]), 0 if r[0] == own else 1, r[2]))[3]
        else:
            default = category.default_unit or (
                category.parent.default_unit if category.parent else None
            )
            if default is not None and default.is_active and default.serves.path in paths:
                lead = default.pk
            else:
                serving = [u for u in units if u[1] in paths]
                if serving:
                    lead = min(serving, key=lambda u: (-u[2], u[3]))[0]
        cache[key] = lead
        return lead

    return suggest


@contextlib.contextmanager
def _quiet_calendar() -> Iterator[None]:
    """Stories reach past now (the step that is not told yet), maybe into a year
    without calendar data: no warning about moments that are thrown away."""
    calendar_log = logging.getLogger(workcalendar.logger.name)
    disabled = calendar_log.disabled
    calendar_log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", workcalendar.CalendarFallbackWarning)
            yield
    finally:
        calendar_log.disabled = disabled


# -- the present ----------------------------------------------------------------------------------
def window(now: datetime, days: int) -> tuple[date, date]:
    """The local days of a window of ``days`` days ending with today."""
    today = timezone.localtime(now, timezone.get_default_timezone()).date()
    return today - timedelta(days=days - 1), today


def load_recent(
    *,
    seed: int = DEFAULT_SEED,
    days: int = DAYS,
    now: datetime | None = None,
    rates: Rates = RATES,
) -> RecentSummary:
    """Make the last ``days`` days of the demo district up to ``now`` (default: the
    clock), unless a present was made before. The demo district must be loaded."""
    started = monotime.monotonic()
    now = (now or timezone.now()).replace(microsecond=0)
    first, today = window(now, days)
    summary = RecentSummary(start=first, now=now)
    root = Grid.objects.filter(code=DISTRICT_CODE).first()
    if root is None:
        raise RecentError("the demo district is not loaded (civicgrid demo)")
    summary.existing = Case.objects.filter(external_id__startswith=PREFIX).count()
    if summary.existing:
        summary.seconds = monotime.monotonic() - started
        return summary
    tick = monotime.monotonic()
    world = history.load_world(root, seed)
    _prefill_time_limits(world)
    ctx = dataclasses.replace(
        world.context,
        start=first,
        end=today,
        until=now,
        suggest=memory_suggester(world.categories, world.context.grids),
    )
    workers = {
        grid: [u for u in people if world.roles.get(u) == Role.GRID_WORKER]
        for grid, people in world.cast.workers.items()
    }
    summary.timings["world"] = monotime.monotonic() - tick
    tick = monotime.monotonic()
    plans = plan_window(ctx, rates, seed=seed, prefix=recent_prefix(seed), workers=workers)
    summary.planned = len(plans)
    summary.timings["plan"] = monotime.monotonic() - tick

    tick = monotime.monotonic()
    first_id = history._next_id(Case)
    approval_ids = itertools.count(history._next_id(Approval))

    def tell(n: int, plan: Plan) -> CaseSim:
        def make() -> CaseSim:
            return CaseSim(
                intake=plan.intake,
                case_id=first_id + n,
                time_limit=world.time_limit,
                roles=world.roles,
                approval_ids=approval_ids,
                end=now,
            )

        return tell_until(make, plan, world.cast, f"{seed}:{plan.intake.external_id}", DETOURS)

    with _quiet_calendar():
        rng = random.Random(f"hold:{seed}")
        held = _hold(ctx, plans, personas(root), tell, now, rng, summary)
        sims = [held.get(n) or tell(n, plan) for n, plan in enumerate(plans)]
    codes = set(Case.objects.values_list("tracking_code", flat=True))
    for sim in sims:
        while sim.case.tracking_code in codes:  # a collision with an older case
            sim.case.tracking_code = sim.case.tracking_code[1:] + "X"
        codes.add(sim.case.tracking_code)
    summary.timings["simulate"] = monotime.monotonic() - tick

    # All or nothing, rollups included: a present half made would never be completed.
    with transaction.atomic():
        tick = monotime.monotonic()
        for begin in range(0, len(sims), history.BATCH):
            events, deadlines, approvals = history.write_sims(sims[begin : begin + history.BATCH])
            summary.events += events
            summary.deadlines += deadlines
            summary.approvals += approvals
        history._reset_sequences()
        summary.written = len(sims)
        summary.timings["write"] = monotime.monotonic() - tick
        tick = monotime.monotonic()
        rebuild_rollups(first, today)
        summary.timings["rollups"] = monotime.monotonic() - tick
    for sim in sims:
        summary.statuses[sim.status] = summary.statuses.get(sim.status, 0) + 1
        channel = sim.case.channel
        summary.channels[channel] = summary.channels.get(channel, 0) + 1
    summary.seconds = monotime.monotonic() - started
    return summary


def _hold(
    ctx: PlanContext,
    plans: list[Plan],
    places: Personas,
    tell: Callable[[int, Plan], CaseSim],
    now: datetime,
    rng: random.Random,
    summary: RecentSummary,
) -> dict[int, CaseSim]:
    """The cases of ``WANTS``, by plan index: each told with its hold, kept when the
    check passes (a case moved to a persona's area is planned again there)."""
    held: dict[int, CaseSim] = {}
    areas = {
        "worker": [g for g in ctx.grids if g.path in places.worker_grids],
        "community": [
            g for g in ctx.grids if places.community and g.path.startswith(places.community)
        ],
    }
    for want in WANTS:
        oldest, newest = now - want.ages[1], now - want.ages[0]
        candidates = [
            n
            for n, p in enumerate(plans)
            if n not in held
            and p.intake.channel == Channel.HOTLINE
            and oldest <= p.intake.received_at <= newest
            and (not want.unit or (places.unit is not None and p.unit == places.unit))
        ]
        if want.newest:
            candidates.reverse()
        else:
            rng.shuffle(candidates)
        area = areas.get(want.place)
        if want.place and not area:
            continue
        found = 0
        for n in candidates[: want.tries]:
            plan = plans[n]
            if area and plan.intake.grid_id not in {g.id for g in area}:
                plan = replan(ctx, plan, rng.choice(area), rng)
            plan = dataclasses.replace(plan, hold=want.hold)
            sim = tell(n, plan)
            if want.check(sim, now):
                plans[n], held[n] = plan, sim
                found += 1
                if found == want.count:
                    break
        summary.held[want.name] = found
    return held


__all__ = [
    "DAYS",
    "PREFIX",
    "WANTS",
    "RecentError",
    "RecentSummary",
    "load_recent",
    "memory_suggester",
    "personas",
    "recent_prefix",
    "window",
]

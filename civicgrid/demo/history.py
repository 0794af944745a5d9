"""``civicgrid demo --history``: the demo district's 2020 in its own data.

From 2020-01-01 to 2020-12-23 the seed district's centre took in 61,802 hotline
cases; 60,872 were closed and 930 still in progress at the end; 11,467 of them were
城市管理 cases (11,366 closed, 101 in progress), handled by its 18 units. The plan
(``history_plan``) makes exactly those cases; each case's story (``history_story``)
is played on ``history_engine.CaseSim``, which leaves the rows the case services
would have written had they been called at each step's time — cases, events,
deadlines, approvals, overdue marks — and those rows are bulk-inserted in batches,
each in its own transaction, with the cases' statistics facts. The rollups of the
history's days are then rebuilt from the facts (``stats.rollups.rebuild_rollups``).
The statistics compute every figure from those rows; none is stored as a figure.

The history is deterministic for a seed and a scale, and idempotent: a case is
known by its external id (``H2020-<seed>-<scale>-<n>``), so a second run adds
nothing and an interrupted run goes on where it stopped. A history made with
another seed or scale is left alone and refused.

Staff the history needs besides the demo accounts — call-takers, dispatchers,
supervisors, and two handlers per unit — are created once, as ``load_demo`` does
(users with unusable passwords, memberships bulk-inserted).
"""

from __future__ import annotations

import itertools
import operator
import random
import time as monotime
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import shapely
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases import routing, workcalendar
from civicgrid.cases.models import (
    Approval,
    Case,
    CaseEvent,
    Category,
    Channel,
    Deadline,
    RoutingRule,
)
from civicgrid.cases.services.engine import time_limit
from civicgrid.demo.district import DEFAULT_SEED, DISTRICT_CODE
from civicgrid.demo.history_engine import CaseSim
from civicgrid.demo.history_plan import CategoryInfo, Figures, GridInfo, PlanContext, plan_cases
from civicgrid.demo.history_story import Cast, Plan, generate
from civicgrid.demo.people import People
from civicgrid.grids import locator
from civicgrid.grids.models import Grid, HandlingUnit, Level
from civicgrid.stats import conf
from civicgrid.stats.facts import CaseRow, DeadlineRow, EventRow, Fact, compute
from civicgrid.stats.rollups import insert_rows, rebuild_rollups, write_facts

START, END = date(2020, 1, 1), date(2020, 12, 23)
FIGURES = Figures()
PREFIX = "H2020-"
BATCH = 2000
POINTS_PER_GRID = 40
#: Staff of the centre made for the history: (username prefix, role, how many).
CENTRE_STAFF = (("zx", Role.CALL_TAKER, 11), ("pq", Role.DISPATCHER, 3), ("zb", Role.SUPERVISOR, 2))
HANDLERS_PER_UNIT = 2


class HistoryError(Exception):
    """The history cannot be made (no demo district, another history present…)."""


@dataclass
class HistorySummary:
    figures: Figures
    planned: int = 0
    existing: int = 0
    written: int = 0
    events: int = 0
    deadlines: int = 0
    approvals: int = 0
    staff_created: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def history_prefix(seed: int, scale: float) -> str:
    return f"{PREFIX}{seed}-{scale:g}-"


# -- the world the history plays in ------------------------------------------------------------
@dataclass
class World:
    root: Grid
    context: PlanContext
    cast: Cast
    roles: dict[int, str]
    categories: dict[int, Category]
    staff_created: int = 0
    _limits: dict[tuple[int, str, str], tuple[Decimal, str]] = field(default_factory=dict)

    def time_limit(self, category_id: int, urgency: str, stage: str) -> tuple[Decimal, str]:
        """``engine.time_limit`` of a case of this category and urgency (cached)."""
        key = (category_id, urgency, stage)
        found = self._limits.get(key)
        if found is None:
            case = Case(category=self.categories[category_id], urgency=urgency)
            found = self._limits[key] = time_limit(case, stage)
        return found


def _until() -> datetime:
    return timezone.make_aware(
        datetime.combine(END + timedelta(days=1), time.min), timezone.get_default_timezone()
    )


def load_world(root: Grid, seed: int) -> World:
    grids = list(Grid.objects.in_subtree(root).order_by("path"))
    by_id = {g.pk: g for g in grids}
    leaves = [g for g in grids if g.level == Level.GRID]
    infos = []
    for g in leaves:
        community = by_id[g.parent_id] if g.parent_id else g
        sub = by_id[community.parent_id] if community.parent_id else community
        infos.append(
            GridInfo(
                g.pk, g.path, g.code, g.name, community.name, sub.pk, sub.name, g.households or 0
            )
        )
    units = {u.pk: u for u in HandlingUnit.objects.active().select_related("serves")}
    units = {pk: u for pk, u in units.items() if u.serves.path.startswith(root.path)}
    # Everything routing.suggest reads of a category, in one query.
    categories = {
        c.pk: c
        for c in Category.objects.select_related(
            "parent", "default_unit__serves", "parent__default_unit__serves"
        )
    }
    infos_by_code = {
        c.code: CategoryInfo(c.pk, c.code, c.name, c.kind, c.parent.code if c.parent else c.code)
        for c in categories.values()
        if c.parent_id is not None and c.is_active
    }
    urban = next((d for d in conf.get("domains") if d["key"] == "urban"), None)
    if urban is None:
        raise HistoryError("stats domains have no 'urban' domain")
    staff_created, cast, roles = _ensure_staff(root, units, seed)
    return World(
        root=root,
        context=PlanContext(
            start=START,
            end=END,
            until=_until(),
            grids=infos,
            points=_points(leaves, seed),
            categories=infos_by_code,
            urban_kinds=frozenset(urban["kinds"]),
            units={pk: u.name for pk, u in units.items()},
            call_takers=cast.call_takers,
            is_workday=workcalendar.is_workday,
            suggest=_suggester(categories, by_id),
            unit_serves={pk: u.serves.path for pk, u in units.items()},
        ),
        cast=cast,
        roles=roles,
        categories=categories,
        staff_created=staff_created,
    )


def _suggester(
    categories: dict[int, Category], grids: dict[int, Grid]
) -> Callable[[int, int], int | None]:
    """``routing.suggest`` (cached): its answer depends only on the category and on which
    of the grid's ancestors have a routing rule or a unit serving them."""
    relevant = set(RoutingRule.objects.filter(is_active=True).values_list("grid_id", flat=True))
    relevant |= set(HandlingUnit.objects.active().values_list("serves_id", flat=True))
    cache: dict[tuple[int, int], int | None] = {}

    def suggest(category_id: int, grid_id: int) -> int | None:
        grid = grids[grid_id]
        anchor = next((i for i in reversed(grid.ancestor_ids) if i in relevant), 0)
        key = (category_id, anchor)
        if key not in cache:
            found = routing.suggest(category=categories[category_id], grid=grid)
            cache[key] = found.lead.pk if found else None
        return cache[key]

    return suggest


def _points(leaves: list[Grid], seed: int) -> dict[int, list[tuple[float, float]]]:
    """Places inside each level-3 grid that the locator puts in that grid."""
    loc = locator.get_locator()
    out: dict[int, list[tuple[float, float]]] = {}
    for grid in leaves:
        rng = np.random.default_rng([seed, grid.pk])
        geom = grid.geometry
        found: list[tuple[float, float]] = []
        for _attempt in range(20):
            xs = np.round(rng.uniform(grid.min_lon, grid.max_lon, 200), 6)
            ys = np.round(rng.uniform(grid.min_lat, grid.max_lat, 200), 6)
            inside = shapely.contains_xy(geom, xs, ys)
            xs, ys = xs[inside], ys[inside]
            hits = loc.grid_ids_at(xs, ys) == grid.pk
            found += [(float(x), float(y)) for x, y in zip(xs[hits], ys[hits], strict=True)]
            if len(found) >= POINTS_PER_GRID:
                break
        if not found:
            found = [(grid.centroid_lon, grid.centroid_lat)]
        out[grid.pk] = found[:POINTS_PER_GRID]
    return out


def _ensure_staff(
    root: Grid, units: dict[int, HandlingUnit], seed: int
) -> tuple[int, Cast, dict[int, str]]:
    """The centre's staff and two handlers per unit, made where missing; and who is who."""
    people = People(seed + 2020)
    wanted: list[tuple[str, str, str, Grid | None, HandlingUnit | None]] = []
    for prefix, role, count in CENTRE_STAFF:
        for n in range(1, count + 1):
            wanted.append((f"{prefix}{n:02d}", people.name(), role, root, None))
    for unit in sorted(units.values(), key=lambda u: u.code):
        for n in range(1, HANDLERS_PER_UNIT + 1):
            wanted.append((f"cz-{unit.code}-{n}", people.name(), Role.UNIT_HANDLER, None, unit))
    have = {u.username: u for u in User.objects.filter(username__in=[w[0] for w in wanted])}
    new = [
        User(username=name, display_name=display, password=make_password(None))
        for name, display, _role, _grid, _unit in wanted
        if name not in have
    ]
    User.objects.bulk_create(new, batch_size=500)
    have = {u.username: u for u in User.objects.filter(username__in=[w[0] for w in wanted])}
    existing = set(Membership.objects.filter(user__in=have.values()).values_list("user_id", "role"))
    Membership.objects.bulk_create(
        [
            Membership(user=have[name], role=role, grid=grid, unit=unit, is_active=True)
            for name, _display, role, grid, unit in wanted
            if (have[name].pk, role) not in existing
        ]
    )
    roles: dict[int, str] = {}
    by_role: dict[str, list[int]] = {}
    handlers: dict[int, list[int]] = {}
    workers: dict[int, list[int]] = {}
    memberships = Membership.objects.active().filter(
        user__is_active=True, role__in=[r for r in Role.values if r != Role.ADMIN]
    )
    for user_id, held, grid_id, grid_path, unit_id in memberships.values_list(
        "user_id", "role", "grid_id", "grid__path", "unit_id"
    ):
        if unit_id in units and held == Role.UNIT_HANDLER:
            handlers.setdefault(unit_id, []).append(user_id)
        elif grid_path and held == Role.GRID_WORKER and grid_path.startswith(root.path):
            workers.setdefault(grid_id, []).append(user_id)
        elif grid_id == root.pk:
            by_role.setdefault(held, []).append(user_id)
        else:
            continue
        roles[user_id] = held
    supervisors = sorted(by_role.get(Role.SUPERVISOR, []))
    cast = Cast(
        call_takers=sorted(by_role.get(Role.CALL_TAKER, [])),
        dispatchers=sorted(by_role.get(Role.DISPATCHER, [])),
        supervisors=supervisors,
        leaders=sorted(by_role.get(Role.LEADER, [])) or supervisors,
        handlers={k: sorted(v) for k, v in handlers.items()},
        workers={k: sorted(v) for k, v in workers.items()},
        quality={
            pk: min(2.2, max(0.4, random.Random(f"{seed}:{u.code}").lognormvariate(0, 0.45)))
            for pk, u in units.items()
        },
    )
    for leaf in Grid.objects.in_subtree(root).filter(level=Level.GRID).values_list("pk", flat=True):
        cast.workers.setdefault(leaf, supervisors)
    return len(new), cast, roles


# -- writing ---------------------------------------------------------------------------------------
def _next_id(model: type[Case] | type[Approval]) -> int:
    highest = model.objects.aggregate(top=Max("id"))["top"] or 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id'))",
                [model._meta.db_table],
            )
            row = cursor.fetchone()
            highest = max(highest, (row[0] if row else 0) or 0)
    return highest + 1


def fact_of(sim: CaseSim) -> Fact:
    c = sim.case
    row = CaseRow(
        id=c.pk,
        status=c.status,
        channel=c.channel,
        request_type=c.request_type,
        category_id=c.category_id,
        lead_unit_id=c.lead_unit_id,
        grid_path=c.grid_path,
        received_at=c.received_at,
        closed_at=c.closed_at,
        return_count=c.return_count,
        rework_count=c.rework_count,
        reopen_count=c.reopen_count,
        urge_count=c.urge_count,
        satisfaction=c.satisfaction,
    )
    deadlines = [
        DeadlineRow(d.stage, d.started_at, d.due_at, d.finished_at, d.overdue_at)
        for d in sim.deadlines
    ]
    events = [
        EventRow(e.action, e.at, e.actor_id, e.actor_role, e.from_status, e.to_status)
        for e in sim.events
    ]
    return compute(row, deadlines, events)


def instance_rows(objs: list[Any]) -> list[dict[str, Any]]:
    """Model instances as {attname: value}, the primary key left out when unset."""
    if not objs:
        return []
    fields = [
        f.attname
        for f in objs[0]._meta.concrete_fields
        if not (f.primary_key and getattr(objs[0], f.attname) is None)
    ]
    get = operator.attrgetter(*fields)
    if len(fields) == 1:
        return [{fields[0]: get(o)} for o in objs]
    return [dict(zip(fields, get(o), strict=True)) for o in objs]


def write_sims(sims: list[CaseSim]) -> tuple[int, int, int]:
    """Insert the rows of simulated cases and their facts, in the caller's transaction.
    The cases keep the ``created_at``/``updated_at`` the services would have stamped."""
    insert_rows(Case, instance_rows([s.case for s in sims]))
    approvals = [a for s in sims for a in s.approvals]
    insert_rows(Approval, instance_rows(approvals))
    events = [e for s in sims for e in s.events]
    insert_rows(CaseEvent, instance_rows(events))
    deadlines = [d for s in sims for d in s.deadlines]
    insert_rows(Deadline, instance_rows(deadlines))
    write_facts([fact_of(s) for s in sims])
    return len(events), len(deadlines), len(approvals)


def _reset_sequences() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Case, Approval]):
            cursor.execute(sql)


# -- the whole history --------------------------------------------------------------------------
def load_history(
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    batch: int = BATCH,
    progress: Callable[[str], None] | None = None,
) -> HistorySummary:
    """Make the demo district's 2020 (or what of it is missing). ``scale`` shrinks every
    figure (for tests); the demo district must be loaded."""
    started = monotime.monotonic()
    figures = FIGURES.scaled(scale)
    summary = HistorySummary(figures=figures)
    root = Grid.objects.filter(code=DISTRICT_CODE).first()
    if root is None:
        raise HistoryError("the demo district is not loaded (civicgrid demo)")
    prefix = history_prefix(seed, scale)
    hotline = Case.objects.filter(channel=Channel.HOTLINE)
    if (
        hotline.filter(external_id__startswith=PREFIX)
        .exclude(external_id__startswith=prefix)
        .exists()
    ):
        raise HistoryError("a history made with another seed or scale is already loaded")
    world = load_world(root, seed)
    summary.staff_created = world.staff_created
    tick = monotime.monotonic()
    plans = plan_cases(world.context, figures, seed=seed, prefix=prefix)
    summary.timings["plan"] = monotime.monotonic() - tick
    summary.planned = len(plans)
    existing = set(
        hotline.filter(external_id__startswith=prefix).values_list("external_id", flat=True)
    )
    todo = [p for p in plans if p.intake.external_id not in existing]
    summary.existing = len(plans) - len(todo)
    if todo:
        _write_all(world, todo, seed, summary, batch, progress)
        _reset_sequences()
        tick = monotime.monotonic()
        rebuild_rollups(START, END)
        summary.timings["rollups"] = monotime.monotonic() - tick
    summary.seconds = monotime.monotonic() - started
    return summary


def _write_all(
    world: World,
    todo: list[Plan],
    seed: int,
    summary: HistorySummary,
    batch: int,
    progress: Callable[[str], None] | None,
) -> None:
    case_ids = itertools.count(_next_id(Case))
    approval_ids = itertools.count(_next_id(Approval))
    codes = set(Case.objects.values_list("tracking_code", flat=True))
    until = _until()
    simulate = write = 0.0
    for start in range(0, len(todo), batch):
        tick = monotime.monotonic()
        sims = []
        for plan in todo[start : start + batch]:
            case_id = next(case_ids)
            while plan.intake.tracking_code in codes:  # a collision with an older case
                plan.intake.tracking_code = plan.intake.tracking_code[1:] + "X"
            codes.add(plan.intake.tracking_code)

            def make(plan: Plan = plan, case_id: int = case_id) -> CaseSim:
                return CaseSim(
                    intake=plan.intake,
                    case_id=case_id,
                    time_limit=world.time_limit,
                    roles=world.roles,
                    approval_ids=approval_ids,
                    end=until,
                )

            sims.append(generate(make, plan, world.cast, f"{seed}:{plan.intake.external_id}"))
        simulate += monotime.monotonic() - tick
        tick = monotime.monotonic()
        with transaction.atomic():
            events, deadlines, approvals = write_sims(sims)
        write += monotime.monotonic() - tick
        summary.written += len(sims)
        summary.events += events
        summary.deadlines += deadlines
        summary.approvals += approvals
        if progress:
            progress(f"{summary.written + summary.existing}/{summary.planned}")
    summary.timings["simulate"] = simulate
    summary.timings["write"] = write


__all__ = [
    "END",
    "FIGURES",
    "START",
    "HistoryError",
    "HistorySummary",
    "World",
    "history_prefix",
    "load_history",
    "load_world",
    "write_sims",
]

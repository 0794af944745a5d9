"""The life of one case of the demo history, told step by step to ``CaseSim``.

Staff act in office time (工作时 on the work calendar), except where a time limit is
counted in natural hours (ice, outages), when duty staff act around the clock. Each
stage takes a random share of the time its deadline allows (a few per cent of
stages run late); units differ in how often they are late and get reworked, so the
league table spreads. Some dispatches go to the wrong unit and come back (回退),
some units ask for more time (延期), some results fail verification (返工), some
callers are dissatisfied at follow-up (回访) and the case is reopened (重办); a few
cases are parked (挂账) or urged (督办).

``generate`` makes a case end closed or open at the end of the history, as the plan
asks: a case meant to be closed that would still run at the end is told again
faster; a case meant to be open that would have closed is cut short.

``tell_until`` tells a case as it comes, up to the end of a window (the demo's
present, ``recent``): wherever the story has got to at "now" is where the case is.
It may take detours the 2020 history does not (``Detours``: rejections, void
requests), and a plan may ``hold`` the story at one point, as if the next step had
not happened yet (a pending extension, a case sent back and not yet re-dispatched…).
Grid workers' reports start filed (or handled, when fixed on the spot) and are not
followed up; portal reports are accepted like hotline cases.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from civicgrid.cases import workcalendar
from civicgrid.cases.models import Channel, Status, TimeUnit
from civicgrid.demo import history_data as data
from civicgrid.demo.history_engine import CaseSim, Intake, SimError, Step

#: Shares of stages that run late, by stage (handling units' are scaled by their quality).
LATE = {"accept": 0.008, "dispatch": 0.01, "acknowledge": 0.015, "handle": 0.03, "verify": 0.012}
MISDISPATCH = 0.035
EXTENSION = 0.03
URGE = 0.012
PARK = 0.002
PARK_PARKABLE = 0.2
REWORK = 0.035
FOLLOW_UP = 0.93
REOPEN_IF_DISSATISFIED = 0.5
SATISFACTION = ((5, 0.68), (4, 0.21), (3, 0.06), (2, 0.03), (1, 0.02))
SATISFACTION_AGAIN = ((5, 0.45), (4, 0.35), (3, 0.12), (2, 0.05), (1, 0.03))


@dataclass
class Cast:
    """Who may act on a case: ids of the people on duty."""

    call_takers: list[int]
    dispatchers: list[int]
    supervisors: list[int]
    leaders: list[int]
    handlers: dict[int, list[int]]
    workers: dict[int, list[int]]
    #: Unit id → how often it is late or reworked, relative to the average.
    quality: dict[int, float]


@dataclass
class Plan:
    """What the plan says of a case: its intake, its right unit, how it should end."""

    intake: Intake
    #: The category's code and its 大类's (for the words of results).
    code: str
    major: str
    unit: int
    wrong_units: list[int]
    parkable: bool
    open_at_end: bool
    #: Where the story waits (``HOLDS``), or "" to tell it all.
    hold: str = ""


#: Where a plan may hold its story: before accepting, before dispatching, sent back
#: and not re-dispatched, dispatched and not acknowledged, in progress before the
#: report-back, with an extension or a void request pending, parked, handled and not
#: verified, closed and not followed up.
HOLDS = (
    "accept",
    "dispatch",
    "returned",
    "acknowledge",
    "handle",
    "extension",
    "void",
    "park",
    "verify",
    "follow_up",
)


@dataclass(frozen=True)
class Detours:
    """Detours of a story that the 2020 history does not take (all off for it)."""

    #: Share of hotline and portal cases not accepted (不予受理).
    reject: float = 0.0
    #: Share of accepted cases whose voiding is requested (作废申请), and approved.
    void: float = 0.0
    void_approved: float = 0.85


HISTORY = Detours()


class _Stop(Exception):
    """The history ends (or the story is cut) before the next step."""


class Teller:
    def __init__(
        self,
        sim: CaseSim,
        plan: Plan,
        cast: Cast,
        rng: random.Random,
        *,
        speed: float = 1.0,
        rush: bool = False,
        limit: int | None = None,
        detours: Detours = HISTORY,
    ) -> None:
        self.sim, self.plan, self.cast, self.rng = sim, plan, cast, rng
        self.speed, self.rush, self.limit = speed, rush, limit
        self.detours = detours
        self.hold = plan.hold
        self.quality = cast.quality.get(plan.unit, 1.0)

    # -- time ----------------------------------------------------------------------------
    def _advance(self, start: datetime, seconds: float, unit: str) -> datetime:
        if self.rush or unit == TimeUnit.NATURAL_HOURS:
            return start + timedelta(seconds=seconds)
        return workcalendar.add_working_hours(start, seconds / 3600)

    def _span(self, start: datetime, due: datetime, unit: str) -> float:
        if self.rush or unit == TimeUnit.NATURAL_HOURS:
            return max((due - start).total_seconds(), 60.0)
        return max(workcalendar.working_seconds_between(start, due), 60.0)

    def _share(self, stage: str, late_factor: float = 1.0) -> float:
        """The share of its time a stage takes: mostly well inside, sometimes late."""
        if self.rush:
            return 0.0
        if self.rng.random() < LATE.get(stage, 0.02) * late_factor:
            return 1.02 + self.rng.expovariate(1 / 0.8)
        quick = stage in ("accept", "dispatch")
        share = self.rng.betavariate(1.3, 6.0) if quick else self.rng.betavariate(1.6, 3.4)
        return min(0.97, 0.01 + share * self.speed)

    def _at(self, share: float, *, after: datetime | None = None) -> datetime:
        """The moment a share of the running stage's time has passed."""
        running = self.sim.running()
        last = after or self.sim.last_at
        if running is None:
            moment = self._advance(last, 600 * self.speed, TimeUnit.WORK_HOURS)
        else:
            span = self._span(running.started_at, running.due_at, running.unit)
            moment = self._advance(running.started_at, share * span, running.unit)
        return self._after(moment, last)

    def _after(self, moment: datetime, last: datetime) -> datetime:
        moment = moment.replace(microsecond=0)
        if self.rush or moment <= last:
            moment = last + timedelta(seconds=self.rng.randint(40, 200))
        return moment.replace(microsecond=0)

    def _gap(self, hours: float, unit: str = TimeUnit.WORK_HOURS) -> datetime:
        last = self.sim.last_at
        return self._after(self._advance(last, hours * 3600 * self.speed, unit), last)

    # -- acting --------------------------------------------------------------------------------
    def _do(self, step: Step) -> bool:
        if step.at >= self.sim.end or (self.limit is not None and len(self.sim.steps) > self.limit):
            raise _Stop
        return self.sim.apply(step)

    def _pick(self, people: list[int]) -> int:
        return self.rng.choice(people)

    def _handler(self, unit: int | None) -> int:
        return self._pick(self.cast.handlers[unit or self.plan.unit])

    def _stage(self, stage: str, late_factor: float = 1.0) -> datetime:
        return self._at(self._share(stage, late_factor))

    def _wait(self, point: str) -> None:
        """The plan holds the story here: the next step has not happened yet."""
        if self.hold == point:
            raise _Stop

    def tell(self) -> None:
        rng, plan, cast = self.rng, self.plan, self.cast
        call_taker = plan.intake.call_taker
        try:
            if plan.intake.result:
                self._verify_on_the_spot()
                return
            if self.sim.status == Status.NEW:
                self._wait("accept")
                if self.detours.reject and rng.random() < self.detours.reject:
                    reason = rng.choice(data.REJECT_REASONS)
                    self._do(Step(self._stage("accept"), "reject", call_taker, text=reason))
                    return
                self._do(Step(self._stage("accept"), "accept", call_taker))
            void = self.detours.void and (rng.random() < self.detours.void or self.hold == "void")
            if void and self._void():  # voided
                return
            self._wait("dispatch")
            dispatcher = self._pick(cast.dispatchers)
            misdispatch = (
                rng.random() < MISDISPATCH if plan.wrong_units and not self.rush else False
            )
            if misdispatch or (plan.wrong_units and self.hold == "returned"):
                wrong = rng.choice(plan.wrong_units)
                self._do(Step(self._stage("dispatch"), "dispatch", dispatcher, unit=wrong))
                reason = rng.choice(data.SEND_BACK_REASONS)
                at = self._at(rng.uniform(0.05, 0.5))
                self._do(Step(at, "send_back", self._handler(wrong), text=reason))
                self._wait("returned")
            self._do(Step(self._stage("dispatch"), "dispatch", dispatcher, unit=plan.unit))
            self._wait("acknowledge")
            self._round()
            self._wait("follow_up")
            if plan.intake.channel != Channel.GRID_WORKER:  # nobody to call back
                self._follow_up(SATISFACTION, reopen=True)
        except _Stop:
            return

    def _verify_on_the_spot(self) -> None:
        """A grid worker's report fixed on the spot waits for its verification only."""
        self._wait("verify")
        worker = self._pick(self.cast.workers[self.plan.intake.grid_id])
        self._do(Step(self._stage("verify"), "verify", worker))

    def _void(self) -> bool:
        """A void request after acceptance (a duplicate, the caller withdrew); whether
        the supervisor approved it."""
        rng = self.rng
        call_taker = self.plan.intake.call_taker
        requester = self._pick(
            self.cast.dispatchers if call_taker is None or rng.random() < 0.6 else [call_taker]
        )
        at = self._at(rng.uniform(0.1, 0.6))
        self._do(Step(at, "request_void", requester, text=rng.choice(data.VOID_REASONS)))
        self._wait("void")
        approve = rng.random() < self.detours.void_approved
        note = "同意作废" if approve else rng.choice(data.DENY_VOID_NOTES)
        decided = self._gap(rng.uniform(0.2, 3))
        supervisor = self._pick(self.cast.supervisors)
        self._do(Step(decided, "decide_void", supervisor, text=note, approve=approve))
        return approve

    def _round(self) -> None:
        """Acknowledge, handle and verify until the case closes."""
        rng = self.rng
        self._do(Step(self._stage("acknowledge", self.quality), "acknowledge", self._handler(None)))
        for attempt in range(3):
            self._handle(first=attempt == 0)
            self._wait("verify")
            worker = self._pick(self.cast.workers[self.plan.intake.grid_id])
            failed = not self.rush and attempt < 2 and rng.random() < REWORK * self.quality
            note = rng.choice(data.VERIFY_FAIL_NOTES) if failed else ""
            self._do(Step(self._stage("verify"), "verify", worker, text=note, passed=not failed))
            if not failed:
                break
        if self.sim.status == Status.HANDLED:  # verified, a supervisor closes
            self._do(
                Step(self._gap(rng.uniform(0.1, 2)), "close", self._pick(self.cast.supervisors))
            )

    def _handle(self, *, first: bool) -> None:
        rng, cast = self.rng, self.cast
        share = self._share("handle", self.quality if first else 0.5)
        if not first:
            share = min(share, 0.97) * 0.5
        if first and not self.rush:
            park = rng.random() < (PARK_PARKABLE if self.plan.parkable else PARK)
            if park or self.hold == "park":
                self._park()
            if rng.random() < EXTENSION or self.hold == "extension":
                share = self._extend(share)
            if (share > 1 and rng.random() < 0.5) or rng.random() < URGE:
                urger = self._pick(cast.leaders if rng.random() < 0.2 else cast.supervisors)
                at = self._at(min(share, 1.05) * rng.uniform(0.3, 0.95))
                self._do(Step(at, "urge", urger, text=rng.choice(data.URGE_REASONS)))
        result = rng.choice(_texts(data.RESULTS, self.plan, data.DEFAULT_RESULT))
        self._wait("handle")
        self._do(Step(self._at(share), "handle", self._handler(None), text=result))

    def _extend(self, share: float) -> float:
        rng = self.rng
        running = self.sim.running()
        if running is None:
            return share
        at = self._at(rng.uniform(0.3, 0.85))
        amount = running.amount
        if running.unit == TimeUnit.WORK_DAYS:
            extra = Decimal(max(1, int(amount) // 2 + rng.randint(0, 2)))
        else:
            extra = Decimal(int(amount)) or Decimal(1)
        reason = rng.choice(data.EXTENSION_REASONS)
        if not self._do(
            Step(at, "request_extension", self._handler(None), text=reason, extra=extra)
        ):
            return share
        self._wait("extension")
        approve = rng.random() < 0.9
        note = "同意延期" if approve else rng.choice(data.DENY_NOTES)
        decided = self._gap(rng.uniform(0.2, 3))
        supervisor = self._pick(self.cast.supervisors)
        self._do(Step(decided, "decide_extension", supervisor, text=note, approve=approve))
        # Granted time is mostly enough; denied, the unit hurries.
        return min(share, 0.97) if approve and rng.random() < 0.8 else share

    def _park(self) -> None:
        rng = self.rng
        supervisor = self._pick(self.cast.supervisors)
        at = self._at(rng.uniform(0.1, 0.5))
        self._do(Step(at, "park", supervisor, text=rng.choice(data.PARK_REASONS)))
        self._wait("park")
        back = self._after(at + timedelta(days=rng.uniform(5, 60) * self.speed), at)
        self._do(Step(back, "resume", supervisor))

    def _follow_up(self, levels: tuple[tuple[int, float], ...], *, reopen: bool) -> None:
        rng = self.rng
        if self.rush or rng.random() > FOLLOW_UP:
            return
        satisfaction = _weighted(rng, levels)
        at = self._gap(rng.uniform(0.5, 16))
        call_taker = self._pick(self.cast.call_takers)
        self._do(Step(at, "follow_up", call_taker, satisfaction=satisfaction))
        if reopen and satisfaction <= 2 and rng.random() < REOPEN_IF_DISSATISFIED:
            again = self._after(at + timedelta(minutes=rng.uniform(3, 30)), at)
            self._do(Step(again, "reopen", call_taker, text=rng.choice(data.REOPEN_REASONS)))
            self._round()
            self._follow_up(SATISFACTION_AGAIN, reopen=False)


def _weighted(rng: random.Random, levels: tuple[tuple[int, float], ...]) -> int:
    return rng.choices([n for n, _w in levels], [w for _n, w in levels])[0]


def _texts(
    table: dict[str, tuple[str, ...]], plan: Plan, default: tuple[str, ...]
) -> tuple[str, ...]:
    """The texts of the category, else of its 大类, else of its kind's prefix."""
    for key in (plan.code, plan.major, plan.code[:2]):
        if key in table:
            return table[key]
    return default


SimFactory = Callable[[], CaseSim]


def tell_until(make: SimFactory, plan: Plan, cast: Cast, seed: str, detours: Detours) -> CaseSim:
    """The case's story as it comes, up to the end of the window (``CaseSim.end``)."""
    return _tell(make, plan, cast, seed, detours=detours)


def generate(make: SimFactory, plan: Plan, cast: Cast, seed: str) -> CaseSim:
    """The case's story, ending as the plan says (closed, or open at the end)."""
    if plan.open_at_end:
        sim = _tell(make, plan, cast, seed)
        if sim.status != Status.CLOSED:
            return _maybe_park(make, sim, plan, cast, seed)
        closing = next(
            i for i, s in enumerate(sim.steps) if s.action in ("verify", "close") and s.passed
        )
        cut = random.Random(f"{seed}:cut").randint(1, max(1, closing - 1))
        sim = _tell(make, plan, cast, seed, limit=cut)
        return _maybe_park(make, sim, plan, cast, seed)
    for speed in (1.0, 0.35, 0.1):
        sim = _tell(make, plan, cast, seed, speed=speed)
        if sim.status == Status.CLOSED:
            return sim
    sim = _tell(make, plan, cast, seed, rush=True)
    if sim.status != Status.CLOSED:
        raise SimError(f"{plan.intake.external_id} cannot close before the end")
    return sim


def _tell(
    make: SimFactory,
    plan: Plan,
    cast: Cast,
    seed: str,
    *,
    speed: float = 1.0,
    rush: bool = False,
    limit: int | None = None,
    detours: Detours = HISTORY,
) -> CaseSim:
    sim = make()
    rng = random.Random(seed)
    Teller(sim, plan, cast, rng, speed=speed, rush=rush, limit=limit, detours=detours).tell()
    sim.finish()
    return sim


def _maybe_park(make: SimFactory, sim: CaseSim, plan: Plan, cast: Cast, seed: str) -> CaseSim:
    """Some old open cases wait parked (挂账) at the end."""
    rng = random.Random(f"{seed}:park")
    age = sim.end - plan.intake.received_at
    if age < timedelta(days=12) or rng.random() > 0.25:
        return sim
    if sim.status not in (Status.FILED, Status.DISPATCHED, Status.IN_PROGRESS, Status.RETURNED):
        return sim
    at = sim.last_at + timedelta(days=rng.uniform(1, 6))
    at = min(at, sim.end - timedelta(hours=rng.uniform(1, 48))).replace(microsecond=0)
    if at <= sim.last_at:
        return sim
    step = Step(at, "park", rng.choice(cast.supervisors), text=rng.choice(data.PARK_REASONS))
    # The sweeps up to the end already ran; tell the story again with the park in it.
    again = make()
    for earlier in sim.steps[1:]:
        again.apply(earlier)
    again.apply(step)
    again.finish()
    return again

"""The bulk history writes exactly what the case services write for the same story.

A handful of stories of the demo history — a send-back and re-dispatch, an
extension, a rework, a dissatisfied follow-up and reopen, a park and resume, an
urge, overdue stages, cases left open and parked at the end — are played twice:
through the real services (``cases.services``, each call at its step's time with
time-machine, the deadline sweep at the minutes the simulation says), and through
the bulk path (``CaseSim`` rows inserted by ``write_sims``, rollups rebuilt). Cases,
events, deadlines, approvals, statistics facts and rollups must be the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import pytest
import time_machine
from django.db import transaction
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import (
    Action,
    Approval,
    Case,
    CaseEvent,
    Category,
    Channel,
    Deadline,
    Status,
)
from civicgrid.demo import history
from civicgrid.demo.history_engine import CaseSim
from civicgrid.demo.history_story import Plan, generate
from civicgrid.demo.services import load_demo
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.stats.counters import CASE_COUNTERS, PERSON_COUNTERS
from civicgrid.stats.models import (
    CaseFact,
    DimRollup,
    GridRollup,
    PersonFact,
    PersonRollup,
    Rollup,
)
from civicgrid.stats.rollups import forget_cases, rebuild_rollups

SEED = 620103


@pytest.fixture(autouse=True)
def _calendar_read_once(settings: Settings) -> None:
    """The work calendar does not change during these tests: read it once, not on
    every deadline computed (the root conftest rechecks it on every call)."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[history.World]:
    with django_db_blocker.unblock(), transaction.atomic():
        load_demo()
        yield history.load_world(Grid.objects.get(code="620103"), SEED)
        transaction.set_rollback(True)


FEATURES: dict[str, Callable[[CaseSim], bool]] = {
    "send_back": lambda s: any(e.action == Action.SEND_BACK for e in s.events),
    "extension": lambda s: any(e.action == Action.APPROVE_EXTENSION for e in s.events),
    "rework": lambda s: s.case.rework_count > 0,
    "reopen": lambda s: s.case.reopen_count > 0,
    "park_resume": lambda s: any(e.action == Action.RESUME for e in s.events),
    "urge": lambda s: s.case.urge_count > 0,
    "overdue_closed": lambda s: s.case.is_overdue and s.case.status == Status.CLOSED,
    "open_overdue": lambda s: s.case.is_overdue and s.case.status != Status.CLOSED,
    "parked_at_end": lambda s: s.case.status == Status.PARKED,
}


@pytest.fixture(scope="module")
def stories(world: history.World, django_db_blocker: Any) -> list[tuple[Plan, CaseSim]]:
    with django_db_blocker.unblock():
        return _stories(world)


def _stories(world: history.World) -> list[tuple[Plan, CaseSim]]:
    """One story of the 10% history for each feature (a story may show several)."""
    plans = history.plan_cases(world.context, history.FIGURES.scaled(0.1), seed=SEED, prefix="CMP-")
    case_ids = itertools.count(10_000_000)
    approval_ids = itertools.count(10_000_000)
    until = history._until()
    chosen: dict[str, tuple[Plan, CaseSim]] = {}
    for plan in plans:
        if len(chosen) == len(FEATURES):
            break

        def make(plan: Plan = plan) -> CaseSim:
            return CaseSim(
                plan.intake, next(case_ids), world.time_limit, world.roles, approval_ids, until
            )

        sim = generate(make, plan, world.cast, f"{SEED}:{plan.intake.external_id}")
        for name, test in FEATURES.items():
            if name not in chosen and test(sim):
                chosen[name] = (plan, sim)
                break
    assert set(chosen) == set(FEATURES), set(FEATURES) - set(chosen)
    return list(chosen.values())


def _replay(stories: list[tuple[Plan, CaseSim]]) -> list[int]:
    """Play the stories through the services, all on one clock."""
    timeline: list[tuple[datetime, int, int, Any]] = []
    for n, (_plan, sim) in enumerate(stories):
        timeline += [(at, 0, n, None) for at in sim.sweeps]
        timeline += [(step.at, 1, n, step) for step in sim.steps]
    timeline.sort(key=lambda t: (t[0], t[1], t[2]))
    cases: dict[int, int] = {}
    for at, kind, n, step in timeline:
        with time_machine.travel(at, tick=False):
            if kind == 0:
                services.mark_overdue(now=at)
                continue
            plan = stories[n][0]
            actor = User.objects.get(pk=step.actor)
            if step.action == "create":
                i = plan.intake
                case, created = services.create_case(
                    data=services.Intake(
                        channel=Channel.HOTLINE,
                        category=Category.objects.get(pk=i.category_id),
                        description=i.description,
                        urgency=i.urgency,
                        request_type=i.request_type,
                        title=i.title,
                        address=i.address,
                        lon=i.lon,
                        lat=i.lat,
                        requester_name=i.requester_name,
                        requester_phone=i.requester_phone,
                        external_id=i.external_id,
                        received_at=at,
                    ),
                    actor=actor,
                )
                assert created
                cases[n] = case.pk
                continue
            _do(Case.objects.get(pk=cases[n]), actor, step)
    return [cases[n] for n in range(len(stories))]


def _do(case: Case, actor: User, step: Any) -> None:
    s = services
    action = step.action
    if action == "accept":
        s.accept_case(case=case, actor=actor, note=step.text)
    elif action == "dispatch":
        unit = HandlingUnit.objects.get(pk=step.unit)
        s.dispatch_case(case=case, actor=actor, unit=unit, note=step.text)
    elif action == "acknowledge":
        s.acknowledge_case(case=case, actor=actor)
    elif action == "send_back":
        s.send_back_case(case=case, actor=actor, reason=step.text)
    elif action == "request_extension":
        s.request_extension(case=case, actor=actor, reason=step.text, extra_amount=step.extra)
    elif action == "decide_extension":
        s.decide_extension(case=case, actor=actor, approve=step.approve, note=step.text)
    elif action == "park":
        s.park_case(case=case, actor=actor, reason=step.text)
    elif action == "resume":
        s.resume_case(case=case, actor=actor, note=step.text)
    elif action == "handle":
        s.handle_case(case=case, actor=actor, result=step.text)
    elif action == "verify":
        s.verify_case(case=case, actor=actor, passed=step.passed, note=step.text)
    elif action == "close":
        s.close_case(case=case, actor=actor, note=step.text)
    elif action == "follow_up":
        s.follow_up_case(case=case, actor=actor, satisfaction=step.satisfaction, note=step.text)
    elif action == "reopen":
        s.reopen_case(case=case, actor=actor, reason=step.text)
    elif action == "urge":
        s.urge_case(case=case, actor=actor, reason=step.text)
    else:  # pragma: no cover
        raise AssertionError(action)


CASE_SKIP = {"id", "number", "tracking_code"}


def _snapshot(case_ids: list[int]) -> list[dict[str, Any]]:
    out = []
    for pk in case_ids:
        case = Case.objects.values().get(pk=pk)
        approvals = list(Approval.objects.filter(case_id=pk).order_by("id").values())
        ordinal = {a["id"]: n for n, a in enumerate(approvals)}
        events = []
        for e in CaseEvent.objects.filter(case_id=pk).order_by("at", "id").values():
            payload = dict(e["payload"])
            if "approval" in payload:
                payload["approval"] = ordinal[payload["approval"]]
            events.append({**e, "payload": payload, "id": None, "case_id": None})
        fact: dict[str, Any] = dict(CaseFact.objects.values().get(case_id=pk))
        persons = list(
            PersonFact.objects.filter(case_id=pk).order_by("day", "user", "role").values()
        )
        out.append(
            {
                "case": {k: v for k, v in case.items() if k not in CASE_SKIP},
                "number": (case["number"][:8], case["number"][8:] == f"{pk:07d}"),
                "events": events,
                "deadlines": [
                    {**d, "id": None, "case_id": None}
                    for d in Deadline.objects.filter(case_id=pk).order_by("id").values()
                ],
                "approvals": [{**a, "id": None, "case_id": None} for a in approvals],
                "fact": dict(fact, case_id=None),
                "persons": [{**p, "id": None, "case_id": None} for p in persons],
            }
        )
    return out


def _rollups() -> dict[str, set[tuple[Any, ...]]]:
    """Every rollup row that counts something (hooks may leave rows of zeros)."""
    out = {}
    for model, counters in (
        (GridRollup, CASE_COUNTERS),
        (DimRollup, CASE_COUNTERS),
        (Rollup, CASE_COUNTERS),
        (PersonRollup, PERSON_COUNTERS),
    ):
        out[model.__name__] = {
            tuple(sorted(row.items()))
            for row in model.objects.values(
                *[f.attname for f in model._meta.concrete_fields if f.attname != "id"]
            )
            if any(row[name] for name in counters)
        }
    return out


@pytest.mark.django_db
def test_the_bulk_path_writes_exactly_what_the_services_write(
    world: history.World, stories: list[tuple[Plan, CaseSim]]
) -> None:
    replayed = _replay(stories)
    by_services = _snapshot(replayed)
    rollups_by_hooks = _rollups()

    forget_cases(replayed)
    Case.objects.filter(pk__in=replayed).delete()
    case_ids = itertools.count(history._next_id(Case))
    approval_ids = itertools.count(history._next_id(Approval))
    sims = [_again(world, plan, next(case_ids), approval_ids) for plan, _sim in stories]

    # Told again (as a second run would), a story is the same.
    def told(sim: CaseSim) -> list[tuple[Any, ...]]:
        return [
            (e.action, e.at, {k: v for k, v in e.payload.items() if k != "approval"})
            for e in sim.events
        ]

    for (_plan, first), again in zip(stories, sims, strict=True):
        assert again.steps == first.steps
        assert told(again) == told(first)
    with transaction.atomic():
        history.write_sims(sims)
    rebuild_rollups(date(2019, 12, 1), date(2020, 12, 31))
    by_bulk = _snapshot([s.case.pk for s in sims])

    assert len(by_services) == len(FEATURES)
    for services_case, bulk_case in zip(by_services, by_bulk, strict=True):
        for part in ("case", "number", "events", "deadlines", "approvals", "fact", "persons"):
            assert bulk_case[part] == services_case[part], (
                services_case["case"]["external_id"],
                part,
            )
    assert _rollups() == rollups_by_hooks
    assert rollups_by_hooks["Rollup"]


def _again(world: history.World, plan: Plan, case_id: int, approval_ids: Any) -> CaseSim:
    """The story of ``plan`` told again (as a second run of the history would)."""

    def make() -> CaseSim:
        return CaseSim(
            plan.intake, case_id, world.time_limit, world.roles, approval_ids, history._until()
        )

    return generate(make, plan, world.cast, f"{SEED}:{plan.intake.external_id}")

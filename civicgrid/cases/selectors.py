"""Reads about cases that more than one interface needs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from civicgrid.accounts.models import Role, User
from civicgrid.cases import workcalendar
from civicgrid.cases.access import ASSISTING, roles_on_case
from civicgrid.cases.models import Case, Category, Stage, Status, TimeUnit
from civicgrid.cases.workflow import TRANSITIONS
from civicgrid.grids import crs

#: Metres per degree of latitude, near enough for a bounding-box prefilter.
M_PER_DEG = 111_320.0


def possible_duplicates(
    *,
    category: Category,
    lon: float | None,
    lat: float | None,
    at: datetime,
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[tuple[Case, float]]:
    """Cases of the same category near the point and close in time, nearest first.

    Distance and time window are ``CIVICGRID_DUPLICATE_METERS`` and
    ``CIVICGRID_DUPLICATE_HOURS``. Returns (case, distance in metres) pairs.
    """
    if lon is None or lat is None:
        return []
    meters = settings.CIVICGRID_DUPLICATE_METERS
    hours = settings.CIVICGRID_DUPLICATE_HOURS
    dlat = meters / M_PER_DEG
    dlon = meters / (M_PER_DEG * max(math.cos(math.radians(lat)), 0.01))
    candidates = (
        Case.objects.filter(
            category=category,
            lon__range=(lon - dlon, lon + dlon),
            lat__range=(lat - dlat, lat + dlat),
            received_at__range=(at - timedelta(hours=hours), at + timedelta(hours=hours)),
        )
        .exclude(status__in=[Status.MERGED, Status.VOIDED, Status.REJECTED])
        .select_related("category", "grid")
        .order_by("-received_at")[: limit * 5]
    )
    found: list[tuple[Case, float]] = []
    for case in candidates:
        if case.pk == exclude_id or case.lon is None or case.lat is None:
            continue
        distance = crs.distance_m(lon, lat, case.lon, case.lat)
        if distance <= meters:
            found.append((case, distance))
    found.sort(key=lambda pair: pair[1])
    return found[:limit]


# -- people's details --------------------------------------------------------------
def mask_phone(phone: str) -> str:
    """``13912345678`` → ``139****5678``; short numbers keep only their last two digits."""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def mask_name(name: str) -> str:
    """``张先生`` → ``张**``."""
    name = name.strip()
    return name[:1] + "*" * (len(name) - 1) if name else ""


def may_see_requester(user: User, case: Case) -> bool:
    """Staff acting on the case see who called; a confidential requester only the
    call-takers and supervisors."""
    roles = roles_on_case(user, case)
    if case.is_confidential:
        return bool(roles & {Role.CALL_TAKER, Role.SUPERVISOR})
    return bool(roles - {ASSISTING})


# -- the timeline ----------------------------------------------------------------------
def timeline(case: Case) -> list[dict[str, Any]]:
    events = case.events.select_related("actor", "actor_unit").order_by("at", "id")
    return [
        {
            "id": e.pk,
            "action": e.action,
            "action_label": str(e.get_action_display()),
            "at": e.at,
            "actor": str(e.actor) if e.actor else "",
            "actor_role": e.actor_role,
            "unit": e.actor_unit.name if e.actor_unit else "",
            "from_status": e.from_status,
            "to_status": e.to_status,
            "reason": e.reason,
            "payload": e.payload,
        }
        for e in events
    ]


def stage_measures(case: Case, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each stage round of the case: how long it took (clock and working time) and
    whether it met its deadline."""
    now = now or timezone.now()
    out = []
    for d in case.deadlines.order_by("started_at", "id"):
        end = d.finished_at or now
        out.append(
            {
                "stage": d.stage,
                "stage_label": str(Stage(d.stage).label),
                "started_at": d.started_at,
                "due_at": d.due_at,
                "finished_at": d.finished_at,
                "met": d.met,
                "overdue_at": d.overdue_at,
                "elapsed_seconds": (end - d.started_at).total_seconds(),
                "working_seconds": workcalendar.working_seconds_between(d.started_at, end),
                "limit": f"{d.amount.normalize()} {TimeUnit(d.unit).label}",
            }
        )
    return out


def allowed_actions(user: User, case: Case) -> list[str]:
    """The actions of the state table ``user`` may take on ``case`` now."""
    roles = roles_on_case(user, case)
    return [
        action
        for action, spec in TRANSITIONS.items()
        if case.status in spec.sources and roles & spec.roles
    ]


#: The milestones of a case, measured from its reception: the first time each happened.
MILESTONES = {
    "to_accept": ("accept", "self_handle"),
    "to_dispatch": ("dispatch",),
    "to_acknowledge": ("acknowledge",),
    "to_handle": ("handle", "self_handle"),
    "to_close": ("verify_pass", "close"),
}


def milestones(case: Case) -> dict[str, float | None]:
    """Seconds from reception to the first accept, dispatch, acknowledgement,
    report-back and closing (``None`` for what has not happened)."""
    firsts: dict[str, datetime] = {}
    for action, at in case.events.order_by("at", "id").values_list("action", "at"):
        firsts.setdefault(action, at)
    out: dict[str, float | None] = {}
    for name, actions in MILESTONES.items():
        times = [firsts[a] for a in actions if a in firsts]
        if name == "to_close" and case.closed_at is None:
            times = []
        out[name] = (min(times) - case.received_at).total_seconds() if times else None
    return out

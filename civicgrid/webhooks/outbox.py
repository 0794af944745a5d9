"""The outbox: ``record`` writes a case event's deliveries in the transaction of the change.

``cases.services.engine.record_event`` calls ``record`` for every event it appends,
so each transition (``engine.move``), intake and every other event writer feeds the
outbox through one call. Without an active subscription it does nothing, usually
without a query: a process trusts "there is none" for
``CIVICGRID_WEBHOOKS_RECHECK_SECONDS``. With some, it costs one SELECT of the
active subscriptions and at most one INSERT (``bulk_create``) of the deliveries.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from civicgrid.cases.models import Action, Case, CaseEvent, Status
from civicgrid.webhooks.models import Delivery, EventType, Subscription

E = EventType
ACTION_TYPES: dict[str, str] = {
    Action.CREATE: E.CREATED,
    Action.ACCEPT: E.ACCEPTED,
    Action.REJECT: E.REJECTED,
    Action.LOCATE: E.LOCATED,
    Action.DISPATCH: E.DISPATCHED,
    Action.REDISPATCH: E.REDISPATCHED,
    Action.ACKNOWLEDGE: E.ACKNOWLEDGED,
    Action.SEND_BACK: E.SENT_BACK,
    Action.REQUEST_EXTENSION: E.EXTENSION_REQUESTED,
    Action.APPROVE_EXTENSION: E.EXTENSION_APPROVED,
    Action.DENY_EXTENSION: E.EXTENSION_DENIED,
    Action.PARK: E.PARKED,
    Action.RESUME: E.RESUMED,
    Action.HANDLE: E.HANDLED,
    Action.SELF_HANDLE: E.SELF_HANDLED,
    Action.VERIFY_PASS: E.VERIFIED,
    Action.VERIFY_FAIL: E.VERIFICATION_FAILED,
    Action.CLOSE: E.CLOSED,
    Action.FOLLOW_UP: E.RATED,
    Action.REOPEN: E.REOPENED,
    Action.URGE: E.URGED,
    Action.REQUEST_VOID: E.VOID_REQUESTED,
    Action.APPROVE_VOID: E.VOIDED,
    Action.DENY_VOID: E.VOID_DENIED,
    Action.MERGE: E.MERGED,
    Action.OVERDUE: E.OVERDUE,
    Action.NOTE: E.NOTE_ADDED,
}


def event_type(event: CaseEvent) -> str | None:
    """The webhook type of a case event: its action's, except that any event which
    closes the case (a passed verification that closes it) is ``case.closed``."""
    if event.to_status == Status.CLOSED and event.from_status != Status.CLOSED:
        return E.CLOSED
    return ACTION_TYPES.get(event.action)


@dataclass(frozen=True)
class Target:
    """What ``record`` needs to know of an active subscription."""

    id: int
    event_types: frozenset[str]
    #: Grid paths a case must lie under (all of them); empty tuples mean no limit.
    grid_path: str
    districts: tuple[str, ...]

    def takes(self, event_type: str, grid_path: str) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        if self.grid_path and not grid_path.startswith(self.grid_path):
            return False
        return not self.districts or any(grid_path.startswith(d) for d in self.districts)


#: ``time.monotonic()`` when this process last found no active subscription.
_none_since: float | None = None


def invalidate() -> None:
    """Forget the cached "no subscription" (a subscription was made or turned on)."""
    global _none_since
    _none_since = None


def active_targets() -> list[Target]:
    global _none_since
    recheck = float(settings.CIVICGRID_WEBHOOKS_RECHECK_SECONDS)
    if _none_since is not None and time.monotonic() - _none_since < recheck:
        return []
    rows = Subscription.objects.active().values_list(
        "id", "event_types", "grid__path", "integration__districts__path"
    )
    found: dict[int, Target] = {}
    for pk, types, grid_path, district in rows:
        known = found.get(pk)
        districts = (known.districts if known else ()) + ((district,) if district else ())
        found[pk] = Target(pk, frozenset(types or ()), grid_path or "", districts)
    _none_since = None if found else time.monotonic()
    return list(found.values())


def _iso(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def snapshot(case: Case, event: CaseEvent) -> dict[str, Any]:
    """The case's public state at the event, from the objects in hand (no query).

    No requester data (name, phone), no description, no staff names; a confidential
    case's place is left out too. Codes and names of the category, grid and unit are
    looked up when the delivery is first sent.
    """
    confidential = case.is_confidential
    note = ""
    if event.is_public and event.reason:
        from civicgrid.open311.privacy import public_text

        names = [case.requester_name]
        if event.actor is not None:
            names += [event.actor.display_name, event.actor.get_full_name()]
        note = public_text(event.reason, names=names)
    return {
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": note,
        "case": {
            "number": case.number,
            "external_id": case.external_id,
            "channel": case.channel,
            "request_type": case.request_type,
            "status": case.status,
            "urgency": case.urgency,
            "category_id": case.category_id,
            "grid_id": case.grid_id,
            "lead_unit_id": case.lead_unit_id,
            "is_confidential": confidential,
            "address": "" if confidential else case.address,
            "lon": None if confidential else case.lon,
            "lat": None if confidential else case.lat,
            "received_at": _iso(case.received_at),
            "closed_at": _iso(case.closed_at),
            "satisfaction": case.satisfaction,
            "is_overdue": case.is_overdue,
            "rework_count": case.rework_count,
            "reopen_count": case.reopen_count,
            "return_count": case.return_count,
            "urge_count": case.urge_count,
        },
    }


def record(case: Case, event: CaseEvent) -> int:
    """Queue ``event`` for every active subscription that wants it; returns how many.

    Call inside the transaction of the change: the deliveries commit or roll back
    with it.
    """
    targets = active_targets()
    if not targets:
        return 0
    kind = event_type(event)
    if kind is None:
        return 0
    if not case.number:  # a bare ``Case(pk=…)`` (the deadline sweep): read it once
        case = Case.objects.get(pk=case.pk)
    wanted = [t for t in targets if t.takes(kind, case.grid_path)]
    if not wanted:
        return 0
    event_id = "evt_" + uuid.uuid4().hex
    data = snapshot(case, event)
    now = timezone.now()
    Delivery.objects.bulk_create(
        [
            Delivery(
                subscription_id=t.id,
                case_id=case.pk,
                case_event_id=event.pk,
                event_id=event_id,
                event_type=kind,
                occurred_at=event.at,
                snapshot=data,
                next_attempt_at=now,
                created_at=now,
            )
            for t in wanted
        ]
    )
    return len(wanted)

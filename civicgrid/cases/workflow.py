"""The one table of allowed transitions, and the stage each status is timed by.

Every service function of ``cases.services`` looks its action up here: which
statuses it may start from, where it leads (``None``: the status stays), which
roles may take it, and whether a reason is required.
"""

from __future__ import annotations

from dataclasses import dataclass

from civicgrid.accounts.models import Role
from civicgrid.cases.models import Action, Stage, Status

S = Status
OPEN_ACTIVE = frozenset({S.NEW, S.FILED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED, S.HANDLED})
PARKABLE = frozenset({S.FILED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED})


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]
    reason_required: bool = False


def _t(
    sources: set[str] | frozenset[str],
    target: str | None,
    roles: set[str],
    *,
    reason: bool = False,
) -> Transition:
    return Transition(frozenset(sources), target, frozenset(roles), reason)


CALL, DISP, SUP = Role.CALL_TAKER, Role.DISPATCHER, Role.SUPERVISOR
UNIT, GRID, LEAD = Role.UNIT_HANDLER, Role.GRID_WORKER, Role.LEADER

TRANSITIONS: dict[str, Transition] = {
    Action.ACCEPT: _t({S.NEW}, S.FILED, {CALL, DISP, SUP}),
    Action.REJECT: _t({S.NEW}, S.REJECTED, {CALL, SUP}, reason=True),
    Action.LOCATE: _t(OPEN_ACTIVE, None, {CALL, DISP, SUP}),
    Action.DISPATCH: _t({S.FILED}, S.DISPATCHED, {DISP, SUP}),
    Action.ACKNOWLEDGE: _t({S.DISPATCHED}, S.IN_PROGRESS, {UNIT}),
    Action.SEND_BACK: _t({S.DISPATCHED, S.IN_PROGRESS}, S.RETURNED, {UNIT}, reason=True),
    Action.REDISPATCH: _t({S.RETURNED}, S.DISPATCHED, {DISP, SUP}),
    Action.REQUEST_EXTENSION: _t({S.IN_PROGRESS}, None, {UNIT}, reason=True),
    Action.APPROVE_EXTENSION: _t({S.IN_PROGRESS}, None, {SUP}),
    Action.DENY_EXTENSION: _t({S.IN_PROGRESS}, None, {SUP}, reason=True),
    Action.PARK: _t(PARKABLE, S.PARKED, {SUP}, reason=True),
    Action.RESUME: _t({S.PARKED}, None, {SUP}),  # back to the status before parking
    Action.HANDLE: _t({S.IN_PROGRESS}, S.HANDLED, {UNIT}),
    Action.VERIFY_PASS: _t({S.HANDLED}, None, {GRID, SUP}),  # closes when the rule says so
    Action.VERIFY_FAIL: _t({S.HANDLED}, S.IN_PROGRESS, {GRID, SUP}, reason=True),
    Action.CLOSE: _t({S.HANDLED}, S.CLOSED, {SUP}),
    Action.FOLLOW_UP: _t({S.CLOSED}, None, {CALL, SUP}),
    Action.REOPEN: _t({S.CLOSED}, S.DISPATCHED, {CALL, SUP}, reason=True),
    Action.URGE: _t(OPEN_ACTIVE | {S.PARKED}, None, {SUP, LEAD}, reason=True),
    Action.REQUEST_VOID: _t(OPEN_ACTIVE | {S.PARKED}, None, {CALL, DISP, SUP}, reason=True),
    Action.APPROVE_VOID: _t(OPEN_ACTIVE | {S.PARKED}, S.VOIDED, {SUP}),
    Action.DENY_VOID: _t(OPEN_ACTIVE | {S.PARKED}, None, {SUP}, reason=True),
    Action.MERGE: _t({S.NEW, S.FILED}, S.MERGED, {CALL, DISP, SUP}),
}

#: The stage whose deadline runs while a case is in a status.
STAGE_OF_STATUS: dict[str, str] = {
    S.NEW: Stage.ACCEPT,
    S.FILED: Stage.DISPATCH,
    S.RETURNED: Stage.DISPATCH,
    S.DISPATCHED: Stage.ACKNOWLEDGE,
    S.IN_PROGRESS: Stage.HANDLE,
    S.HANDLED: Stage.VERIFY,
}

"""Reads about cases that more than one interface needs."""

from __future__ import annotations

import base64
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy

from civicgrid.accounts.models import Role, User
from civicgrid.cases import workcalendar
from civicgrid.cases.access import ASSISTING, memberships, roles_on_case
from civicgrid.cases.models import (
    OPEN_STATUSES,
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseQuerySet,
    Category,
    Deadline,
    Stage,
    Status,
    TimeUnit,
    due_key,
    urgency_rank,
)
from civicgrid.cases.workflow import TRANSITIONS
from civicgrid.grids import crs
from civicgrid.grids.models import Grid

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


def milestones(
    case: Case, *, events: Sequence[dict[str, Any]] | None = None
) -> dict[str, float | None]:
    """Seconds from reception to the first accept, dispatch, acknowledgement,
    report-back and closing (``None`` for what has not happened). ``events``: the
    case's ``timeline`` when the caller has it (no second read of the events)."""
    firsts: dict[str, datetime] = {}
    pairs: Iterable[tuple[str, datetime]] = (
        ((e["action"], e["at"]) for e in events)
        if events is not None
        else case.events.order_by("at", "id").values_list("action", "at")
    )
    for action, at in pairs:
        firsts.setdefault(action, at)
    out: dict[str, float | None] = {}
    for name, actions in MILESTONES.items():
        times = [firsts[a] for a in actions if a in firsts]
        if name == "to_close" and case.closed_at is None:
            times = []
        out[name] = (min(times) - case.received_at).total_seconds() if times else None
    return out


def available_actions(user: User, case: Case) -> list[str]:
    """``allowed_actions`` narrowed by what the case itself needs first, as the
    services check it: a location to accept, a pending request to decide (and none
    pending to ask again), a running deadline to extend, a passed verification to
    close, a lead unit to reopen. What a page offers as buttons."""
    actions = allowed_actions(user, case)
    if not actions:
        return []
    drop: set[str] = set()
    if case.grid_id is None:
        drop.add(Action.ACCEPT)
    if APPROVAL_ACTIONS & set(actions):
        pending = set(
            case.approvals.filter(status=ApprovalStatus.PENDING).values_list("kind", flat=True)
        )
        if ApprovalKind.EXTENSION in pending:
            drop.add(Action.REQUEST_EXTENSION)
        else:
            drop |= {Action.APPROVE_EXTENSION, Action.DENY_EXTENSION}
        if ApprovalKind.VOID in pending:
            drop.add(Action.REQUEST_VOID)
        else:
            drop |= {Action.APPROVE_VOID, Action.DENY_VOID}
    if case.due_at is not None and case.due_at < timezone.now():
        drop.add(Action.REQUEST_EXTENSION)
    if Action.CLOSE in actions and not case.events.filter(action=Action.VERIFY_PASS).exists():
        drop.add(Action.CLOSE)
    if case.lead_unit_id is None:
        drop.add(Action.REOPEN)
    return [a for a in actions if a not in drop]


APPROVAL_ACTIONS = frozenset(
    {
        Action.REQUEST_EXTENSION,
        Action.APPROVE_EXTENSION,
        Action.DENY_EXTENSION,
        Action.REQUEST_VOID,
        Action.APPROVE_VOID,
        Action.DENY_VOID,
    }
)


# -- deadline colours ----------------------------------------------------------------
#: Past this share of a stage's time (from its start to its deadline) a case turns yellow.
DEADLINE_WARNING_SHARE = 0.75


def deadline_state(
    *, started_at: datetime | None, due_at: datetime | None, now: datetime | None = None
) -> str:
    """``"red"`` when the running stage is past its deadline, ``"yellow"`` past 75 % of
    its time, ``"green"`` before; ``""`` when no stage runs (closed, parked, …)."""
    if due_at is None:
        return ""
    now = now or timezone.now()
    if now >= due_at:
        return "red"
    if started_at is None or due_at <= started_at:
        return "green"
    share = (now - started_at) / (due_at - started_at)
    return "yellow" if share >= DEADLINE_WARNING_SHARE else "green"


def stage_started_at() -> Subquery:
    """An annotation: when the case's running stage started (its open deadline's start)."""
    return Subquery(
        Deadline.objects.filter(case=OuterRef("pk"), finished_at__isnull=True)
        .order_by("-started_at", "-id")
        .values("started_at")[:1],
        output_field=DateTimeField(),
    )


# -- search ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseFilters:
    """What a list of cases is narrowed to; every field is optional."""

    status: Sequence[str] = ()
    #: The code of a 小类, or of a 大类 (then all its 小类).
    category: str = ""
    #: A unit leading or assisting.
    unit: int | None = None
    #: A subtree root the caller has checked the user may see.
    grid: Grid | None = None
    channel: str = ""
    overdue: bool | None = None
    received_from: datetime | None = None
    #: Exclusive.
    received_to: datetime | None = None
    #: A case number or external id exactly, or part of the description, address or title.
    q: str = ""


def filter_cases(qs: CaseQuerySet, filters: CaseFilters) -> CaseQuerySet:
    if filters.status:
        qs = qs.filter(status__in=list(filters.status))
    if filters.category:
        qs = qs.filter(
            Q(category__code=filters.category) | Q(category__parent__code=filters.category)
        )
    if filters.unit is not None:
        qs = qs.for_unit(filters.unit)
    if filters.grid is not None:
        qs = qs.in_subtree(filters.grid)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.overdue is not None:
        qs = qs.filter(is_overdue=filters.overdue)
    if filters.received_from:
        qs = qs.filter(received_at__gte=filters.received_from)
    if filters.received_to:
        qs = qs.filter(received_at__lt=filters.received_to)
    text = filters.q.strip()
    if text:
        contains = (
            Q(description__icontains=text) | Q(address__icontains=text) | Q(title__icontains=text)
        )
        if len(text) == 2 and connection.vendor == "postgresql":
            # No trigram in two characters: the bigram index finds the candidates
            # (cases migration 0006); icontains still decides. It comes first: a plan
            # walking the newest cases then tests the cheap LIKE before the pairs.
            contains &= Q(_BigramsContain(*TEXT_FIELDS, Value(text.upper())))
        qs = qs.filter(Q(number=text) | Q(external_id=text) | contains)
    return qs


#: The texts a search looks into, in the order of ``civicgrid_bigrams``' arguments.
TEXT_FIELDS = (F("description"), F("address"), F("title"))


class _BigramsContain(Func):
    """``civicgrid_bigrams(description, address, title) @> ARRAY[pair]``: the GIN
    index of cases migration 0006 answers it (PostgreSQL only)."""

    output_field = BooleanField()
    conditional = True

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        *texts, pair = self.source_expressions
        sql: list[str] = []
        params: list[Any] = []
        for expression in (*texts, pair):
            part, part_params = compiler.compile(expression)
            sql.append(part)
            params.extend(part_params)
        return f"civicgrid_bigrams({', '.join(sql[:-1])}) @> ARRAY[{sql[-1]}]::text[]", params


# -- keyset pages -----------------------------------------------------------------------
NEWEST = "newest"
URGENT = "urgent"
SORT_LABELS = {
    NEWEST: gettext_lazy("最新接收"),
    URGENT: gettext_lazy("紧急、先到期优先"),
}


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool
    kind: type


#: Each sort is a total order ending with the id, so a page boundary is one row's keys.
SORTS: dict[str, tuple[SortKey, ...]] = {
    NEWEST: (SortKey("received_at", True, datetime), SortKey("id", True, int)),
    # Queues: 特急, 紧急, 一般; then the earliest deadline (none last), the oldest.
    URGENT: (
        SortKey("urgency_rank", False, int),
        SortKey("due_key", False, datetime),
        SortKey("received_at", False, datetime),
        SortKey("id", False, int),
    ),
}


class InvalidCursor(ValueError):
    pass


@dataclass
class CasePage:
    items: list[Case]
    #: Pass as ``after`` for the next page, as ``before`` for the previous; ``None``: none.
    next_cursor: str | None = None
    prev_cursor: str | None = None
    sort: str = NEWEST


def with_sort_keys(qs: CaseQuerySet, sort: str) -> CaseQuerySet:
    if sort == URGENT:
        # The expressions of the index ``case_urgent_order``, so it serves the order.
        return qs.annotate(urgency_rank=urgency_rank(), due_key=due_key())
    return qs


def encode_cursor(case: Case, sort: str = NEWEST) -> str:
    parts = []
    for key in SORTS[sort]:
        value = getattr(case, key.name)
        parts.append(value.isoformat() if isinstance(value, datetime) else str(value))
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str = NEWEST) -> list[Any]:
    keys = SORTS[sort]
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded).decode().split("|")
        if len(parts) != len(keys):
            raise ValueError(cursor)
        values: list[Any] = []
        for key, part in zip(keys, parts, strict=True):
            if key.kind is datetime:
                at = parse_datetime(part)
                if at is None:
                    raise ValueError(part)
                values.append(at)
            else:
                values.append(int(part))
        return values
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor(cursor) from exc


def _beyond(keys: Sequence[SortKey], values: Sequence[Any], *, forward: bool) -> Q:
    """Rows after (``forward``) or before the row with ``values``, in the sort order.

    ``(a > x) OR (a = x AND b > y) OR …``, and the first key's bound ``a >= x`` again
    on its own: it changes no result, but PostgreSQL can start an index scan there
    instead of reading every row before the cursor and filtering them out.
    """
    terms = []
    for i, key in enumerate(keys):
        op = "gt" if forward != key.descending else "lt"
        term = Q(**{f"{key.name}__{op}": values[i]})
        for earlier, value in zip(keys[:i], values[:i], strict=True):
            term &= Q(**{earlier.name: value})
        terms.append(term)
    first = keys[0]
    bound = Q(**{f"{first.name}__{'gte' if forward != first.descending else 'lte'}": values[0]})
    return bound & reduce(operator.or_, terms)


def page_cases(
    qs: CaseQuerySet, *, sort: str = NEWEST, after: str = "", before: str = "", limit: int = 50
) -> CasePage:
    """One page of ``qs`` in the order ``sort``, after or before a cursor (keyset
    pagination: no OFFSET, stable while cases come in). Raises ``InvalidCursor``."""
    keys = SORTS[sort]
    qs = with_sort_keys(qs, sort)
    backward = bool(before) and not after
    cursor = before if backward else after
    if cursor:
        qs = qs.filter(_beyond(keys, decode_cursor(cursor, sort), forward=not backward))
    order = [("-" if key.descending != backward else "") + key.name for key in keys]
    rows = list(qs.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()
    has_next = True if backward else more
    has_prev = more if backward else bool(cursor)
    return CasePage(
        items=rows,
        next_cursor=encode_cursor(rows[-1], sort) if rows and has_next else None,
        prev_cursor=encode_cursor(rows[0], sort) if rows and has_prev else None,
        sort=sort,
    )


# -- my tasks ------------------------------------------------------------------------------
TASK_LABELS = {
    "accept": gettext_lazy("待受理"),
    "dispatch": gettext_lazy("待派遣"),
    "returned": gettext_lazy("已回退待改派"),
    "acknowledge": gettext_lazy("待签收"),
    "handle": gettext_lazy("处置中"),
    "approve": gettext_lazy("待审批"),
    "verify": gettext_lazy("待核查"),
    "close": gettext_lazy("待结案"),
    "overdue": gettext_lazy("环节超时"),
}


@dataclass
class MyTasks:
    #: How many cases wait for each kind of task (only kinds the user's roles have).
    counts: dict[str, int]
    #: How many cases need the user now (a case in two kinds counts once).
    total: int

    def items(self) -> list[tuple[str, str, int]]:
        """(kind, label, count) in the order of ``TASK_LABELS``."""
        return [(k, str(TASK_LABELS[k]), self.counts[k]) for k in TASK_LABELS if k in self.counts]


def _open_deadline(stage: str) -> Exists:
    return Exists(
        Deadline.objects.filter(case=OuterRef("pk"), stage=stage, finished_at__isnull=True)
    )


def awaiting_verification() -> Q:
    """Handled cases still to verify: with ``CIVICGRID_CLOSE_ON_VERIFY`` off a verified
    case stays handled, waiting for a supervisor, while its close stage runs."""
    return Q(status=Status.HANDLED) & ~Q(_open_deadline(Stage.CLOSE))


def task_conditions(user: User, *, now: datetime | None = None) -> dict[str, Q]:
    """For each kind of task the user's memberships give, which cases it covers.

    Dispatchers: filed and returned cases in their subtree; call-takers: new ones;
    unit staff: cases their unit leads waiting for acknowledgement or in progress;
    supervisors: pending approvals, and verified cases to close; grid workers:
    handled cases in their grids to verify; everyone: running stages past their
    deadline in their scope.
    """
    now = now or timezone.now()
    tasks: dict[str, Q] = {}

    def add(kind: str, condition: Q) -> None:
        tasks[kind] = tasks[kind] | condition if kind in tasks else condition

    scopes: list[Q] = []
    for m in memberships(user):
        if m.unit_id:
            lead = Q(lead_unit_id=m.unit_id)
            add("acknowledge", lead & Q(status=Status.DISPATCHED))
            add("handle", lead & Q(status=Status.IN_PROGRESS))
            assisting = Case.assisting_units.through.objects.filter(
                case_id=OuterRef("pk"), handlingunit_id=m.unit_id
            )
            where = lead | Q(Exists(assisting))
        elif m.grid is not None:
            where = Q(grid_path__startswith=m.grid.path)
            if m.grid.parent_id is None:
                where |= Q(grid_path="")
            if m.role == Role.CALL_TAKER:
                add("accept", where & Q(status=Status.NEW))
            elif m.role == Role.DISPATCHER:
                add("dispatch", where & Q(status=Status.FILED))
                add("returned", where & Q(status=Status.RETURNED))
            elif m.role == Role.SUPERVISOR:
                pending = Approval.objects.filter(
                    case=OuterRef("pk"), status=ApprovalStatus.PENDING
                )
                add("approve", where & Q(Exists(pending)))
                add("close", where & Q(status=Status.HANDLED) & Q(_open_deadline(Stage.CLOSE)))
            elif m.role == Role.GRID_WORKER:
                add("verify", where & awaiting_verification())
        else:
            continue
        scopes.append(where)
    late = Q(status__in=OPEN_STATUSES, due_at__lt=now)
    if user.is_superuser:
        add("overdue", late)
    elif scopes:
        add("overdue", reduce(operator.or_, scopes) & late)
    return tasks


def my_tasks(user: User, *, now: datetime | None = None) -> MyTasks:
    """What needs ``user``'s action now, counted in one query."""
    tasks = task_conditions(user, now=now)
    if not tasks:
        return MyTasks(counts={}, total=0)
    counts = Case.objects.filter(reduce(operator.or_, tasks.values())).aggregate(
        total=Count("pk"), **{kind: Count("pk", filter=q) for kind, q in tasks.items()}
    )
    total = counts.pop("total")
    return MyTasks(counts={kind: counts[kind] for kind in tasks}, total=total)


def task_cases(user: User, kind: str = "", *, now: datetime | None = None) -> CaseQuerySet:
    """The cases behind ``my_tasks`` (of one kind, or all): a subset of the cases the
    user may see, for a list page."""
    tasks = task_conditions(user, now=now)
    if kind:
        return Case.objects.filter(tasks[kind]) if kind in tasks else Case.objects.none()
    if not tasks:
        return Case.objects.none()
    return Case.objects.filter(reduce(operator.or_, tasks.values()))

"""What the Open311 endpoint reads: services, their definitions, requests and updates.

Everything here is public: no staff names, no requester's personal data; the free
text (descriptions, reasons) passes through ``privacy.public_text``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils.translation import gettext as _

from civicgrid.cases.models import (
    FINAL_STATUSES,
    Action,
    Case,
    CaseEvent,
    CaseQuerySet,
    Category,
    CategoryKind,
    Deadline,
    RequestType,
    Stage,
    Status,
    TimeLimit,
    TimeUnit,
)
from civicgrid.grids.models import Grid
from civicgrid.open311.models import LIST_DATATYPES, ServiceAttribute
from civicgrid.open311.privacy import public_text
from civicgrid.open311.render import Open311Error

#: Open311's two statuses: a case is closed when nothing more happens to it.
CLOSED_STATUSES = FINAL_STATUSES
#: Longest description GeoReport allows.
MAX_DESCRIPTION = 4000

#: mySociety's extended statuses (servicerequestupdates) for each case status.
MYSOCIETY_STATUS = {
    Status.NEW: "OPEN",
    Status.FILED: "OPEN",
    Status.DISPATCHED: "ACTION_SCHEDULED",
    Status.IN_PROGRESS: "IN_PROGRESS",
    Status.RETURNED: "INTERNAL_REFERRAL",
    Status.HANDLED: "IN_PROGRESS",
    Status.PARKED: "ACTION_SCHEDULED",
    Status.CLOSED: "FIXED",
    Status.REJECTED: "NOT_COUNCILS_RESPONSIBILITY",
    Status.VOIDED: "CANCELLED",
    Status.MERGED: "DUPLICATE",
}


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


# -- services -------------------------------------------------------------------------
def services_queryset() -> QuerySet[Category]:
    """Every active 小类 under an active 大类: one Open311 service each."""
    return (
        Category.objects.active()
        .minors()
        .filter(parent__is_active=True)
        .select_related("parent")
        .order_by("parent__sort_order", "parent__code", "sort_order", "code")
    )


def _keywords(category: Category) -> str | None:
    words = [w for w in category.pinyin.split() if w]
    if category.kind == CategoryKind.REQUEST:
        words += [str(label) for label in RequestType.labels]
    return ", ".join(dict.fromkeys(words)) or None


def service_list() -> list[dict[str, Any]]:
    categories = list(services_queryset())
    with_attributes = set(
        ServiceAttribute.objects.active().values_list("category_id", flat=True).distinct()
    )
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": c.filing_criteria or None,
            "metadata": c.pk in with_attributes or c.parent_id in with_attributes,
            "type": "realtime",
            "keywords": _keywords(c),
            "group": c.parent.name if c.parent else None,
        }
        for c in categories
    ]


def get_service(code: str) -> Category:
    """The active service ``code``, or a 404."""
    category = services_queryset().filter(code=code).first()
    if category is None:
        raise Open311Error(404, _("未知的服务编码 service_code：%(c)s") % {"c": code})
    return category


def attributes_of(category: Category) -> list[ServiceAttribute]:
    return list(
        ServiceAttribute.objects.for_category(category.pk, category.parent_id)
        .prefetch_related("values")
        .order_by("order", "code")
    )


def service_definition(category: Category) -> dict[str, Any]:
    attributes = []
    for a in attributes_of(category):
        item: dict[str, Any] = {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype,
            "required": a.required,
            "datatype_description": a.datatype_description or None,
            "order": a.order,
            "description": a.description,
        }
        if a.datatype in LIST_DATATYPES:
            item["values"] = [{"key": v.key, "name": v.name} for v in a.values.all()]
        attributes.append(item)
    return {"service_code": category.code, "attributes": attributes}


# -- requests -------------------------------------------------------------------------
def public_cases(roots: list[Grid] | None) -> CaseQuerySet:
    """Cases the public may follow in ``roots`` (all districts for ``None``): not
    those whose requester asked for confidentiality; an unlocated case counts where
    its Open311 submission was filed."""
    cases = Case.objects.filter(is_confidential=False)
    if roots is None:
        return cases
    where = Q(open311_submission__jurisdiction__in=roots, grid__isnull=True)
    for root in roots:
        where |= Q(grid_path__startswith=root.path)
    return cases.filter(where)


def _public_events() -> QuerySet[CaseEvent]:
    """Events the public sees: the public ones, and status changes (without reason)."""
    return CaseEvent.objects.filter(
        Q(is_public=True) | (~Q(from_status="") & ~Q(from_status=F("to_status")))
    )


def with_public_fields(cases: CaseQuerySet, *, extensions: bool = False) -> CaseQuerySet:
    """Everything a request document needs, in a fixed number of queries."""
    # status_notes: the reason of the latest public transition (not a note or a rating).
    notes = (
        CaseEvent.objects.filter(case=OuterRef("pk"), is_public=True)
        .exclude(reason="")
        .exclude(to_status="")
        .exclude(action__in=(Action.FOLLOW_UP, Action.MERGE))
        .order_by("-at", "-id")
    )
    handle_due = Deadline.objects.filter(case=OuterRef("pk"), stage=Stage.HANDLE).order_by(
        "-started_at", "-id"
    )
    cases = cases.select_related("category", "lead_unit", "open311_submission").annotate(
        public_note=Subquery(notes.values("reason")[:1]),
        public_note_by=Subquery(notes.values("actor__display_name")[:1]),
        handle_due=Subquery(handle_due.values("due_at")[:1]),
    )
    if extensions:
        events = _public_events().select_related("actor").order_by("at", "id")
        cases = cases.prefetch_related(Prefetch("events", queryset=events, to_attr="public_events"))
    return cases


class Notices:
    """``service_notice``: the handling time limit of a category and urgency, read
    for all the categories of one answer at once."""

    def __init__(self, categories: Iterable[Category]) -> None:
        ids: set[int] = set()
        for c in categories:
            ids.add(c.pk)
            if c.parent_id:
                ids.add(c.parent_id)
        self.limits = {
            (row.category_id, row.urgency): (row.amount, row.unit)
            for row in TimeLimit.objects.filter(category_id__in=ids, stage=Stage.HANDLE)
        }

    def __call__(self, category: Category, urgency: str) -> str | None:
        found = self.limits.get((category.pk, urgency))
        if found is None and category.parent_id:
            found = self.limits.get((category.parent_id, urgency))
        if found is None:
            defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
            default = defaults.get(urgency, {}).get(Stage.HANDLE)
            if default is None:
                return None
            found = default
        amount, unit = found
        text = f"{float(amount):g}{TimeUnit(unit).label}"
        return _("按规定应在 %(limit)s 内处置") % {"limit": text}


def _names(case: Case, *more: str | None) -> list[str]:
    return [n for n in (case.requester_name, *more) if n]


def _grid_paths(cases: Iterable[Case]) -> dict[int, list[dict[str, Any]]]:
    ids = {int(p) for c in cases for p in c.grid_path.strip("/").split("/") if p}
    grids = {g.pk: g for g in Grid.objects.filter(pk__in=ids).only("code", "name", "level")}
    paths: dict[int, list[dict[str, Any]]] = {}
    for c in cases:
        steps = [int(p) for p in c.grid_path.strip("/").split("/") if p]
        paths[c.pk] = [
            {"code": grids[i].code, "name": grids[i].name, "level": grids[i].level}
            for i in steps
            if i in grids
        ]
    return paths


def _public_reason(case: Case, event: CaseEvent) -> str:
    """The reason of an event as the public may read it: only a public event's, masked;
    never a merge's (it names the other case), as on the citizen's portal."""
    if not event.is_public or event.action == Action.MERGE:
        return ""
    actor = event.actor.display_name if event.actor else ""
    return public_text(event.reason, names=_names(case, actor))


def _note(case: Case, event: CaseEvent) -> dict[str, Any]:
    text = _public_reason(case, event)
    return {
        "datetime": event.at,
        "description": text or str(Action(event.action).label),
        "type": event.action,
    }


def request_document(
    case: Case,
    *,
    notices: Notices,
    extensions: bool = False,
    paths: dict[int, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """One ``request`` of GET requests (``case`` from ``with_public_fields``)."""
    submission = getattr(case, "open311_submission", None)
    description = public_text(case.description, names=_names(case))[:MAX_DESCRIPTION]
    note = getattr(case, "public_note", None)
    closed = case.status == Status.CLOSED and case.closed_at is not None
    document: dict[str, Any] = {
        "service_request_id": case.number,
        "status": open311_status(case.status),
        "status_notes": public_text(note, names=_names(case, getattr(case, "public_note_by", "")))
        or None,
        "service_name": case.category.name,
        "service_code": case.category.code,
        "description": description or None,
        "agency_responsible": case.lead_unit.name if case.lead_unit else None,
        "service_notice": notices(case.category, case.urgency),
        "requested_datetime": case.received_at,
        "updated_datetime": case.closed_at if closed else case.updated_at,
        "expected_datetime": getattr(case, "handle_due", None),
        "address": case.address or None,
        "address_id": (submission.address_id or None) if submission else None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": (submission.media_url or None) if submission else None,
    }
    if extensions:
        document["extended_attributes"] = {
            "status_label": str(Status(case.status).label),
            "channel": case.channel,
            "urgency": case.urgency,
            "grid_path": (paths or {}).get(case.pk, []),
            # A list, not a mapping: codes a client made up need not be XML names.
            # Sorted: PostgreSQL's jsonb keeps no order.
            "attributes": [
                {"code": code, "value": value}
                for code, value in sorted((submission.attributes if submission else {}).items())
            ],
        }
        document["notes"] = [_note(case, e) for e in getattr(case, "public_events", [])]
    return document


def request_documents(cases: list[Case], *, extensions: bool = False) -> list[dict[str, Any]]:
    paths = _grid_paths(cases) if extensions else None
    notices = Notices(c.category for c in cases)
    return [request_document(c, notices=notices, extensions=extensions, paths=paths) for c in cases]


# -- the update feed (mySociety servicerequestupdates) ----------------------------------
def update_events(cases: CaseQuerySet) -> QuerySet[CaseEvent]:
    return (
        _public_events().filter(case__in=cases).select_related("case", "actor").order_by("at", "id")
    )


def update_document(event: CaseEvent) -> dict[str, Any]:
    case = event.case
    status = event.to_status or event.from_status or case.status
    text = _public_reason(case, event)
    payload = event.payload or {}
    return {
        "update_id": str(event.pk),
        "service_request_id": case.number,
        "status": "REOPEN" if event.action == Action.REOPEN else MYSOCIETY_STATUS[Status(status)],
        "updated_datetime": event.at,
        "description": text or str(Action(event.action).label),
        "media_url": payload.get("media_url") if event.is_public else None,
        "external_status_code": status,
    }

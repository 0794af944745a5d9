"""The shift supervisor's desk (``/desk/``): requests to decide (void, extension, park),
cases waiting to be closed, the cases that breached a deadline today, urging; counts
at the top. Decisions, closing and urging happen in the row (htmx)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import memberships, visible_cases
from civicgrid.cases.models import (
    OPEN_STATUSES,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    CaseQuerySet,
    Deadline,
    Stage,
    Status,
    TimeUnit,
)
from civicgrid.cases.selectors import deadline_state, stage_started_at
from civicgrid.web.forms.cases import date_start
from civicgrid.web.views.helpers import staff_user
from civicgrid.web.views.row_actions import RowOutcome, run_row_action

ROW_ACTIONS = ("decide_extension", "decide_void", "close", "urge")
CELL = "web/desk/_cell.html"
#: How many rows each list of the desk shows (the case list has the rest).
LIMIT = 50


def desk_cases(user: User) -> CaseQuerySet:
    """The cases of the supervisor's scope; 404 for anyone who is not a supervisor."""
    if not user.is_superuser and not any(m.role == Role.SUPERVISOR for m in memberships(user)):
        raise Http404
    return visible_cases(user)


def _today() -> tuple[datetime, datetime]:
    start = date_start(timezone.localdate())
    return start, start + timedelta(days=1)


def _open_close_stage() -> Exists:
    return Exists(
        Deadline.objects.filter(case=OuterRef("pk"), stage=Stage.CLOSE, finished_at__isnull=True)
    )


def desk_context(user: User) -> dict[str, Any]:
    scope = desk_cases(user)
    now = timezone.now()
    start, end = _today()
    running_unit = Subquery(
        Deadline.objects.filter(case=OuterRef("case_id"), finished_at__isnull=True)
        .order_by("-started_at", "-id")
        .values("unit")[:1]
    )
    approvals = list(
        Approval.objects.filter(status=ApprovalStatus.PENDING, case__in=scope.values("pk"))
        .select_related("case__category__parent", "case__grid", "case__lead_unit", "requested_by")
        .annotate(time_unit=running_unit)
        .order_by("requested_at", "id")[:LIMIT]
    )
    closing = list(
        scope.filter(status=Status.HANDLED)
        .filter(_open_close_stage())
        .select_related("category__parent", "grid", "lead_unit")
        .order_by("due_at", "id")[:LIMIT]
    )
    breached_today = Deadline.objects.filter(
        case=OuterRef("pk"), overdue_at__gte=start, overdue_at__lt=end
    )
    breached = list(
        scope.filter(Exists(breached_today))
        .select_related("category__parent", "grid", "lead_unit")
        .annotate(
            breached_stage=Subquery(breached_today.order_by("-overdue_at").values("stage")[:1]),
            stage_started_at=stage_started_at(),
        )
        .order_by("-urge_count", "due_at", "id")[:LIMIT]
    )
    counts = {
        "approvals": Approval.objects.filter(
            status=ApprovalStatus.PENDING, case__in=scope.values("pk")
        ).count(),
        "closing": scope.filter(status=Status.HANDLED).filter(_open_close_stage()).count(),
        "breached": scope.filter(Exists(breached_today)).count(),
        "overdue": scope.filter(status__in=OPEN_STATUSES, due_at__lt=now).count(),
    }
    stage_labels = dict(Stage.choices)
    units = dict(TimeUnit.choices)
    decide: dict[str, str] = {
        ApprovalKind.EXTENSION: "decide_extension",
        ApprovalKind.VOID: "decide_void",
    }
    return {
        "approval": [
            {
                "case": a.case,
                "approval": a,
                "act": decide.get(a.kind, ""),
                "unit_label": units.get(a.time_unit, ""),
            }
            for a in approvals
        ],
        "closing": [{"case": c} for c in closing],
        "breached": [
            {
                "case": c,
                "open": c.status in OPEN_STATUSES,
                "stage": stage_labels.get(c.breached_stage, ""),
                "deadline": deadline_state(
                    started_at=c.stage_started_at,
                    due_at=c.due_at,
                    now=now,
                ),
            }
            for c in breached
        ],
        "counts": counts,
        "limit": LIMIT,
        "today": timezone.localdate(),
        "overdue_url": reverse("case-list") + "?overdue=on&sort=urgent",
    }


#: The lists of the desk; a case may be in several, each row's cell has its own id.
SECTIONS = ("approval", "closing", "breached")


def _what(section: str) -> str:
    return section if section in SECTIONS else "breached"


def _page(
    request: HttpRequest, user: User, outcome: RowOutcome | None = None, status: int = 200
) -> HttpResponse:
    context = desk_context(user)
    what = _what(request.POST.get("what", ""))
    # Each row with the outcome of the post that failed in it (a plain post; htmx
    # gets the row's cell alone).
    for section in SECTIONS:
        for row in context[section]:
            hit = outcome is not None and outcome.pk == row["case"].pk and section == what
            row["outcome"] = outcome if hit else None
    return render(request, "web/desk/desk.html", context, status=status)


@login_required
def desk(request: HttpRequest) -> HttpResponse:
    return _page(request, staff_user(request))


@login_required
@require_POST
def desk_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    user = staff_user(request)
    desk_cases(user)  # 404 for who has no desk
    return run_row_action(
        request,
        user,
        pk,
        action,
        offered_here=ROW_ACTIONS,
        cell_template=CELL,
        page_url=reverse("desk"),
        render_page=lambda outcome, status: _page(request, user, outcome, status),
        extra={"what": _what(request.POST.get("what", "")), "act": action},
    )

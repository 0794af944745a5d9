"""The handling unit's inbox (``/inbox/``): cases waiting for acknowledgement and in
progress for my unit(s), with their deadlines; acknowledge and send back in the row,
the case page for an extension and the report back with after-photos."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import memberships, visible_cases
from civicgrid.cases.models import CaseQuerySet, Status
from civicgrid.cases.selectors import URGENT
from civicgrid.web.views.case_list import render_case_list
from civicgrid.web.views.helpers import staff_user
from civicgrid.web.views.row_actions import RowOutcome, run_row_action

INBOX_STATUSES = (Status.DISPATCHED, Status.IN_PROGRESS)
#: The actions the inbox's rows offer; the rest is on the case page.
ROW_ACTIONS = ("acknowledge", "send_back")
COLUMNS = (
    "number",
    "status",
    "urgency",
    "category",
    "description",
    "place",
    "received_at",
    "deadline",
    "actions",
)
CELL = "web/inbox/_cell.html"


def _unit_ids(user: User) -> list[int]:
    return [m.unit_id for m in memberships(user) if m.role == Role.UNIT_HANDLER and m.unit_id]


def inbox_cases(user: User) -> CaseQuerySet:
    """The cases my unit(s) lead that wait for acknowledgement or are in progress;
    404 for anyone who handles cases for no unit."""
    units = _unit_ids(user)
    if not units and not user.is_superuser:
        raise Http404
    base = visible_cases(user).filter(status__in=INBOX_STATUSES)
    return base.filter(lead_unit_id__in=units) if units else base


def _page(
    request: HttpRequest, user: User, outcome: RowOutcome | None = None, status: int = 200
) -> HttpResponse:
    base = inbox_cases(user)
    counts = base.order_by().aggregate(
        acknowledge=Count("pk", filter=Q(status=Status.DISPATCHED)),
        handle=Count("pk", filter=Q(status=Status.IN_PROGRESS)),
        overdue=Count("pk", filter=Q(due_at__lt=timezone.now())),
    )
    response = render_case_list(
        request,
        "web/inbox/inbox.html",
        base,
        default_sort=URGENT,
        columns=COLUMNS,
        context={
            "case_row_template": "web/inbox/_row.html",
            "counts": counts,
            "row_outcome": outcome,
        },
    )
    response.status_code = status
    return response


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    return _page(request, staff_user(request))


@login_required
@require_POST
def inbox_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    user = staff_user(request)
    inbox_cases(user)  # 404 for who has no inbox
    return run_row_action(
        request,
        user,
        pk,
        action,
        offered_here=ROW_ACTIONS,
        cell_template=CELL,
        page_url=reverse("inbox"),
        render_page=lambda outcome, status: _page(request, user, outcome, status),
    )

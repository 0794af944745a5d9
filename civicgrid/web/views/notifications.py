"""What needs my action now: the badge in the top bar and the list behind it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from civicgrid.cases.access import is_staff
from civicgrid.cases.selectors import TASK_LABELS, URGENT, my_tasks, task_cases
from civicgrid.web.views.case_list import render_case_list
from civicgrid.web.views.helpers import current_user, staff_user

#: htmx stops polling on this status (anonymous, signed out, or no membership).
STOP_POLLING = 286

TASK_COLUMNS = (
    "number",
    "status",
    "urgency",
    "category",
    "description",
    "place",
    "unit",
    "deadline",
)


def task_badge(request: HttpRequest) -> HttpResponse:
    """The top bar's badge, polled every 30 s."""
    user = current_user(request)
    if not is_staff(user):
        return HttpResponse(status=STOP_POLLING)
    return render(request, "web/_task_badge.html", {"tasks": my_tasks(user)})


@login_required
def task_list(request: HttpRequest, kind: str = "") -> HttpResponse:
    user = staff_user(request)
    tasks = my_tasks(user)
    if kind and kind not in TASK_LABELS:
        raise Http404
    return render_case_list(
        request,
        "web/notifications.html",
        task_cases(user, kind),
        default_sort=URGENT,
        columns=TASK_COLUMNS,
        context={"tasks": tasks, "kind": kind, "kind_label": TASK_LABELS.get(kind, "")},
    )

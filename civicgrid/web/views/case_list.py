"""The filterable, keyset-paginated case table that every list page reuses.

A role page narrows its own base queryset and hands it over::

    from civicgrid.cases.access import visible_cases
    from civicgrid.cases.selectors import URGENT
    from civicgrid.web.views.case_list import render_case_list

    @login_required
    def dispatch_queue(request):
        user = staff_user(request)
        base = visible_cases(user).filter(status__in=[Status.FILED, Status.RETURNED])
        return render_case_list(
            request, "web/dispatch/queue.html", base, default_sort=URGENT,
            columns=("select", "number", "status", "category", "place", "deadline"),
        )

and its template includes ``web/cases/_filters.html`` and ``web/cases/_table.html``.
Optional context of the page: ``case_select_form`` (the id of the page's own form
the "select" checkboxes belong to, for bulk actions) and ``case_row_template`` (a
template included in the "actions" cell of each row, with ``row`` and ``c``).
The filters swap the table through htmx (``HX-Target: case-table``), for which
``render_case_list`` returns the table alone. The base queryset must be built on
``visible_cases(user)`` (or ``selectors.task_cases``): this helper narrows, it does
not scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.models import Case, CaseQuerySet
from civicgrid.cases.selectors import (
    NEWEST,
    InvalidCursor,
    deadline_state,
    filter_cases,
    mask_name,
    mask_phone,
    page_cases,
    stage_started_at,
)
from civicgrid.web.forms.cases import CaseFilterForm
from civicgrid.web.views.helpers import current_user, htmx_target

PAGE_SIZE = 30

#: The columns a table may show, in any order: name -> header.
COLUMNS: dict[str, str | Promise] = {
    "select": "",  # a checkbox per row (name "case"), for bulk actions of the page's own form
    "number": _("案件编号"),
    "status": _("状态"),
    "urgency": _("紧急程度"),
    "category": _("类别"),
    "description": _("问题描述"),
    "place": _("位置"),
    "unit": _("主办单位"),
    "channel": _("来源"),
    "received_at": _("接收时间"),
    "deadline": _("当前环节时限"),
    "requester": _("诉求人"),
    "actions": "",  # the page's own per-row template, ``case_row_template``
}
DEFAULT_COLUMNS = (
    "number",
    "status",
    "category",
    "description",
    "place",
    "unit",
    "received_at",
    "deadline",
    "requester",
)
TABLE_ID = "case-table"


@dataclass
class CaseRow:
    case: Case
    #: "red", "yellow", "green", or "" when no stage runs.
    deadline: str
    #: The requester, always masked in lists.
    requester: str


def case_list_context(
    request: HttpRequest,
    base_queryset: CaseQuerySet,
    *,
    default_sort: str = NEWEST,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    page_size: int | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """The context of ``web/cases/_filters.html`` and ``web/cases/_table.html`` for the
    cases of ``base_queryset``, filtered, sorted and paged by the request's query
    string. A constant number of queries whatever the page size. ``path`` is the list
    page's own address when the request went elsewhere (a form posted from it)."""
    path = path or request.path
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown case table columns: {sorted(unknown)}")
    form = CaseFilterForm(request.GET, user=current_user(request), default_sort=default_sort)
    sort = form.sort_order()
    qs = (
        filter_cases(base_queryset, form.filters())
        .select_related("category__parent", "grid", "lead_unit")
        .annotate(stage_started_at=stage_started_at())
    )
    after, before = request.GET.get("after", ""), request.GET.get("before", "")
    page_size = page_size or PAGE_SIZE
    try:
        page = page_cases(qs, sort=sort, after=after, before=before, limit=page_size)
    except InvalidCursor:
        page = None
    if page is None or (not page.items and (after or before)):
        # A cursor from an old link, or a page emptied since: back to the first page.
        page = page_cases(qs, sort=sort, limit=page_size)
    now = timezone.now()
    rows = [
        CaseRow(
            case=c,
            deadline=deadline_state(started_at=c.stage_started_at, due_at=c.due_at, now=now),  # type: ignore[attr-defined]
            requester=" ".join(
                part
                for part in (mask_name(c.requester_name), mask_phone(c.requester_phone))
                if part
            ),
        )
        for c in page.items
    ]
    return {
        "case_filter_form": form,
        "case_rows": rows,
        "case_columns": [(name, COLUMNS[name]) for name in columns],
        "case_column_names": list(columns),
        "case_page": page,
        "case_list_url": path,
        "case_table_id": TABLE_ID,
        "case_next_url": _page_url(request, path, after=page.next_cursor)
        if page.next_cursor
        else "",
        "case_prev_url": _page_url(request, path, before=page.prev_cursor)
        if page.prev_cursor
        else "",
    }


def _page_url(request: HttpRequest, path: str, **cursor: str | None) -> str:
    params = request.GET.copy()
    for name in ("after", "before"):
        params.pop(name, None)
    params.update({k: v for k, v in cursor.items() if v})
    return f"{path}?{params.urlencode()}"


def render_case_list(
    request: HttpRequest,
    template: str,
    base_queryset: CaseQuerySet,
    *,
    default_sort: str = NEWEST,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    context: Mapping[str, Any] | None = None,
    path: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """``template`` with the case list of ``base_queryset`` (and ``context``); the
    table alone when htmx asks for it (filter changes and page links)."""
    full = {
        **(context or {}),
        **case_list_context(
            request, base_queryset, default_sort=default_sort, columns=columns, path=path
        ),
    }
    if htmx_target(request) == TABLE_ID:
        return render(request, "web/cases/_table.html", full, status=status)
    return render(request, template, full, status=status)

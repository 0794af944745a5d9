"""The grid worker's pages, phone first: my grids (``/field/``), verifying a handled
case on site (``/field/verify/<id>/``), and the 3-tap problem report
(``/field/report/``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from civicgrid.accounts.models import Role, User
from civicgrid.cases import selectors
from civicgrid.cases.access import memberships
from civicgrid.cases.catalogue import search_categories
from civicgrid.cases.errors import CaseConflict, CaseError
from civicgrid.cases.models import OPEN_STATUSES, AttachmentKind, Case, Status
from civicgrid.grids.models import Grid
from civicgrid.web.forms.case_actions import ACTIONS, offered
from civicgrid.web.forms.field import FieldReportForm, tile_categories
from civicgrid.web.views.helpers import staff_user
from civicgrid.web.views.row_actions import load_case

#: How many verification tasks /field/ lists (the nearest deadlines first).
TASK_LIMIT = 50
SEARCH_LIMIT = 12


def worker_grids(user: User) -> list[Grid]:
    """The grids ``user`` patrols as a grid worker; 404 for anyone who patrols none."""
    grids = [m.grid for m in memberships(user) if m.role == Role.GRID_WORKER and m.grid]
    if not grids:
        raise Http404
    return sorted(grids, key=lambda g: g.path)


@login_required
def field_home(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    grids = worker_grids(user)
    now = timezone.now()
    open_q = Q(status__in=OPEN_STATUSES)
    aggregates: dict[str, Any] = {}
    for g in grids:
        inside = Q(grid_path__startswith=g.path)
        aggregates[f"open_{g.pk}"] = Count("pk", filter=inside & open_q)
        aggregates[f"verify_{g.pk}"] = Count(
            "pk", filter=inside & selectors.awaiting_verification()
        )
        aggregates[f"overdue_{g.pk}"] = Count("pk", filter=inside & open_q & Q(due_at__lt=now))
    counts = Case.objects.filter(
        Q.create([("grid_path__startswith", g.path) for g in grids], connector=Q.OR)
    ).aggregate(**aggregates)
    tasks = list(
        selectors.task_cases(user, "verify")
        .select_related("category__parent", "grid", "lead_unit")
        .annotate(photos=Count("attachments"))
        .order_by("due_at", "id")[:TASK_LIMIT]
    )
    return render(
        request,
        "web/field/home.html",
        {
            "grids": [
                {
                    "grid": g,
                    "open": counts[f"open_{g.pk}"],
                    "verify": counts[f"verify_{g.pk}"],
                    "overdue": counts[f"overdue_{g.pk}"],
                }
                for g in grids
            ],
            "tasks": tasks,
            "now": now,
        },
    )


def _photos(case: Case) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k in AttachmentKind.values}
    for a in case.attachments.order_by("id"):
        url = reverse("api-v1:download_attachment", args=[case.pk, a.pk])
        groups[a.kind].append({"url": url, "thumb": f"{url}?thumbnail=true"})
    return groups


@login_required
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    """The before-photos beside the unit's result and after-photos; pass or fail with a
    note and an on-site photo (``verify_case(photos=)``)."""
    user = staff_user(request)
    worker_grids(user)
    case = load_case(user, pk)
    spec = ACTIONS["verify"]
    form = spec.form_class(
        request.POST or None, request.FILES or None, case=case, user=user, auto_id="id_%s"
    )
    allowed = spec in offered(selectors.available_actions(user, case))
    status = 200
    if request.method == "POST":
        status = 400
        if not allowed or request.POST.get("version") != str(case.version):
            messages.error(request, _("案件已被他人处理，请刷新后重试。"))
            return redirect("field-verify", pk=case.pk)
        if form.is_valid():
            try:
                done = form.run()
            except CaseConflict:
                messages.error(request, _("案件已被他人处理，请刷新后重试。"))
                return redirect("field-verify", pk=case.pk)
            except CaseError as exc:
                form.add_error(form.error_field_for(exc), exc.message)
            else:
                passed = form.cleaned_data["verdict"] == "pass"
                messages.success(
                    request,
                    (_("核查通过：%(n)s") if passed else _("核查不通过，已退回返工：%(n)s"))
                    % {"n": done.number},
                )
                return redirect("field-home")
    return render(
        request,
        "web/field/verify.html",
        {"case": case, "form": form, "allowed": allowed, "photos": _photos(case)},
        status=status,
    )


@login_required
def report(request: HttpRequest) -> HttpResponse:
    """3 taps: a category tile, a photo, send; the phone's location (else the grid's
    centre); optionally fixed on the spot (自处理, straight to verification)."""
    user = staff_user(request)
    grids = worker_grids(user)
    form = FieldReportForm(request.POST or None, request.FILES or None, user=user, grids=grids)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                case = form.run()
            except CaseError as exc:
                form.add_error(form.error_field_for(exc), exc.message)
            else:
                if case.status == Status.HANDLED:
                    notice = _("已当场处理并上报，等待核查：%(n)s")
                else:
                    notice = _("已上报并立案：%(n)s")
                messages.success(request, notice % {"n": case.number})
                return redirect("field-home")
    picked = str(form["category"].value() or "")
    return render(
        request,
        "web/field/report.html",
        {
            "form": form,
            "tiles": tile_categories(picked),
            "picked": picked,
            "fallback": {str(g.pk): [g.centroid_lon, g.centroid_lat] for g in grids},
        },
        status=status,
    )


@login_required
@require_GET
def report_search(request: HttpRequest) -> HttpResponse:
    """htmx: more category tiles, found by Chinese, pinyin initials or code."""
    worker_grids(staff_user(request))
    query = request.GET.get("q", "").strip()[:30]
    found = search_categories(query, limit=SEARCH_LIMIT) if query else []
    return render(request, "web/field/_search.html", {"hits": found, "query": query, "picked": ""})

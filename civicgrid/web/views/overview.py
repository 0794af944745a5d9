"""Street, community and leader views (``/overview/``): the open cases of the user's
subtree on a map and in the case table, counts by status and by category, and a
subtree picker limited to the user's scope."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases.access import memberships, visible_cases
from civicgrid.cases.models import CaseQuerySet, Status
from civicgrid.cases.selectors import URGENT, filter_cases
from civicgrid.grids.access import scope_roots
from civicgrid.web.views.case_list import TABLE_ID, case_list_context
from civicgrid.web.views.helpers import htmx_target, staff_user

#: The map shows at most this many open cases, the latest first (with a note saying so).
MAP_LIMIT = 500
#: The category counts list this many 小类 (the rest summed up as "others").
CATEGORY_ROWS = 12
COLUMNS = (
    "number",
    "status",
    "category",
    "description",
    "place",
    "unit",
    "received_at",
    "deadline",
)
BODY_ID = "overview-body"
STATUS_LABELS = dict(Status.choices)


def overview_cases(user: User) -> CaseQuerySet:
    """The open cases of the user's grid scope; 404 for who has no grid scope."""
    if not user.is_superuser and not any(m.grid_id for m in memberships(user)):
        raise Http404
    return visible_cases(user).open()


def _counts(qs: CaseQuerySet) -> dict[str, Any]:
    now = timezone.now()
    by_status = {
        row["status"]: row["n"]
        for row in qs.order_by().values("status").annotate(n=Count("pk", distinct=True))
    }
    categories = list(
        qs.order_by()
        .values("category__code", "category__name", "category__parent__name")
        .annotate(n=Count("pk", distinct=True))
        .order_by("-n", "category__code")
    )
    total = sum(by_status.values())
    top = categories[:CATEGORY_ROWS]
    others = sum(row["n"] for row in categories[CATEGORY_ROWS:])
    widest = max([row["n"] for row in top] + [others, 1])
    return {
        "total": total,
        "overdue": qs.filter(due_at__lt=now).count(),
        "by_status": [
            {"status": s, "label": STATUS_LABELS[s], "n": by_status[s]}
            for s in Status.values
            if by_status.get(s)
        ],
        "by_category": [
            {
                "code": row["category__code"],
                "name": row["category__name"],
                "major": row["category__parent__name"],
                "n": row["n"],
                "share": round(100 * row["n"] / widest),
            }
            for row in top
        ],
        "other_categories": others,
        "other_share": round(100 * others / widest),
    }


def _points(qs: CaseQuerySet) -> list[dict[str, Any]]:
    now = timezone.now()
    rows = (
        qs.exclude(lon__isnull=True)
        .order_by("-received_at", "-id")
        .values("pk", "number", "lon", "lat", "status", "due_at", "category__name")[:MAP_LIMIT]
    )
    return [
        {
            "id": r["pk"],
            "n": r["number"],
            "lon": r["lon"],
            "lat": r["lat"],
            "s": r["status"],
            "late": bool(r["due_at"] and r["due_at"] < now),
            "c": r["category__name"],
            "url": reverse("case-detail", args=[r["pk"]]),
        }
        for r in rows
    ]


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    base = overview_cases(user)
    context = case_list_context(request, base, default_sort=URGENT, columns=COLUMNS)
    form = context["case_filter_form"]
    filters = form.filters()
    shown = filter_cases(base, filters)
    roots = scope_roots(user)
    picked = filters.grid
    area = picked or (roots[0] if len(roots) == 1 else None)
    points = _points(shown)
    context.update(
        {
            "counts": _counts(shown),
            "points_shown": len(points),
            "map_limit": MAP_LIMIT,
            "picker": [g for g in form.grids.values()],
            "picked": picked,
            "roots": roots,
            "status_labels": STATUS_LABELS,
            "overview_body_id": BODY_ID,
            "map_config": {
                "points": points,
                "area": [area.min_lon, area.min_lat, area.max_lon, area.max_lat] if area else None,
                "gridUrl": reverse("api-v1:grid_detail", args=[area.pk]) if area else "",
                # The area's parts (its subdistricts, communities or grids), outlined.
                "partsUrl": f"{reverse('api-v1:grids_geojson')}?parent={area.pk}" if area else "",
                "basemap": {
                    "url": settings.CIVICGRID_BASEMAP_URL,
                    "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
                    "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
                },
                "statusLabels": {k: str(v) for k, v in STATUS_LABELS.items()},
            },
        }
    )
    if htmx_target(request) == TABLE_ID:
        # A filter change: the counts and the map follow it, so the whole body swaps.
        response = render(request, "web/overview/_body.html", context)
        response["HX-Retarget"] = f"#{BODY_ID}"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "web/overview/overview.html", context)

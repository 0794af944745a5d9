"""The call-taker's intake page (``/intake/``) and its small htmx helpers.

The page is one form for one phone call (``civicgrid.web.forms.intake``); the
helpers answer as the call-taker types: categories (Chinese, pinyin initials or
code), places (community or grid names in the address), the grid a point falls in,
and possible duplicates of what is being taken in.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import visible_cases
from civicgrid.cases.catalogue import search_categories
from civicgrid.cases.errors import CaseError
from civicgrid.cases.models import Category, Stage, TimeLimit, TimeUnit, Urgency
from civicgrid.cases.selectors import possible_duplicates
from civicgrid.grids import crs, locator
from civicgrid.grids.access import scope_roots, visible_grids
from civicgrid.grids.models import Grid, Level
from civicgrid.web.forms.intake import OUTCOMES, IntakeForm, new_token
from civicgrid.web.nav import user_roles
from civicgrid.web.views.helpers import staff_user

INTAKE_ROLES = frozenset({Role.CALL_TAKER, Role.SUPERVISOR, Role.DISPATCHER})
CATEGORY_HITS = 12
PLACE_HITS = 8
DUPLICATES_SHOWN = 5
#: Words that end the name of a subdistrict, community, village or grid in an address.
PLACE_WORD = re.compile(r"[\w\u4e00-\u9fff]{1,20}?(?:街道|社区|网格|村|镇|乡)")

#: Keyboard shortcuts (Alt + key), as the page lists them; intake.js binds the same keys.
SHORTCUTS = [
    ("M", "id_description", gettext_lazy("问题描述")),
    ("L", "id_category_q", gettext_lazy("问题类别")),
    ("W", "id_address", gettext_lazy("地址或社区")),
    ("G", "id_lon", gettext_lazy("坐标")),
    ("R", "id_requester_name", gettext_lazy("诉求人")),
    ("X", "id_reject_reason", gettext_lazy("不予受理理由")),
]


def role_user(request: HttpRequest, roles: frozenset[str]) -> User:
    """The signed-in user if they hold one of ``roles`` (or are a superuser); anyone
    else gets the same 404 as for any page outside their work."""
    user = staff_user(request)
    if user.is_superuser or user_roles(user) & roles:
        return user
    raise Http404


# -- the page --------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def intake_page(request: HttpRequest) -> HttpResponse:
    user = role_user(request, INTAKE_ROLES)
    if request.method != "POST":
        form = IntakeForm(initial={"token": new_token()}, user=user)
        return _page(request, user, form, last=_last(request, user))
    form = IntakeForm(request.POST, user=user)
    if form.is_valid():
        try:
            case = form.run()
        except CaseError as exc:
            form.add_error(form.error_field_for(exc), exc.message)
        else:
            return redirect(f"{reverse('intake')}?last={case.pk}")
    return _page(request, user, form, status=400)


def _last(request: HttpRequest, user: User) -> dict[str, Any] | None:
    """The case the previous call ended in (shown above a fresh form)."""
    pk = request.GET.get("last", "")
    if not pk.isdigit() or len(pk) > 18:
        return None
    case = visible_cases(user).filter(pk=int(pk)).select_related("merged_into").first()
    if case is None:
        return None
    return {"case": case, "outcome": OUTCOMES.get(case.status, case.get_status_display())}


def _page(
    request: HttpRequest,
    user: User,
    form: IntakeForm,
    *,
    last: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    category = form.category_obj
    if category is None and form.is_bound:
        code = str(form.data.get("category", ""))
        category = (
            Category.objects.filter(code=code).select_related("parent").first() if code else None
        )
    urgency = str(form["urgency"].value() or Urgency.NORMAL)
    context = {
        "form": form,
        "last": last,
        "category": category,
        "category_limit": _handle_limits([category], urgency)[0] if category else "",
        "shortcuts": SHORTCUTS,
        "map_config": _map_config(user),
        "intake_strings": _strings(),
    }
    return render(request, "web/intake/page.html", context, status=status)


def _map_config(user: User) -> dict[str, Any]:
    roots = scope_roots(user)
    return {
        "geojson": reverse("api-v1:grids_geojson"),
        "gridDetail": reverse("api-v1:grid_detail", args=[0]).removesuffix("0"),
        "locate": reverse("intake-locate"),
        "duplicates": reverse("intake-duplicates"),
        "levels": [Level.DISTRICT, Level.SUBDISTRICT, Level.COMMUNITY],
        "roots": [[r.min_lon, r.min_lat, r.max_lon, r.max_lat] for r in roots],
        "basemap": {
            "url": settings.CIVICGRID_BASEMAP_URL,
            "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
            "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        },
    }


def _strings() -> dict[str, str]:
    """The words intake.js shows, translated here."""
    return {
        "mapFailed": _("地图加载失败，可以搜索地址或输入坐标。"),
        "noCategory": _("尚未选择类别"),
    }


# -- categories --------------------------------------------------------------------------------
def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _handle_limits(categories: list[Category], urgency: str) -> list[str]:
    """The handling stage's time limit of each category at ``urgency``, in words (one
    query): its own, else its 大类's, else the platform default."""
    if urgency not in Urgency.values:
        urgency = Urgency.NORMAL
    ids = {c.pk for c in categories} | {c.parent_id for c in categories if c.parent_id}
    found = {
        category_id: (amount, unit)
        for category_id, amount, unit in TimeLimit.objects.filter(
            category_id__in=ids, urgency=urgency, stage=Stage.HANDLE
        ).values_list("category_id", "amount", "unit")
    }
    defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
    default_amount, default_unit = defaults[urgency][Stage.HANDLE]
    out = []
    for c in categories:
        amount, unit = (
            found.get(c.pk)
            or found.get(c.parent_id or 0)
            or (
                Decimal(str(default_amount)),
                default_unit,
            )
        )
        out.append(f"{_amount(Decimal(amount))} {TimeUnit(unit).label}")
    return out


@login_required
@require_GET
def category_search(request: HttpRequest) -> HttpResponse:
    """htmx: 小类 matching what is typed (Chinese, pinyin initials or code), with the
    大类 › 小类 path and the handling time limit at the chosen urgency."""
    role_user(request, INTAKE_ROLES)
    query = request.GET.get("category_q", "").strip()[:30]
    hits = search_categories(query, limit=CATEGORY_HITS) if query else []
    limits = _handle_limits(hits, request.GET.get("urgency", Urgency.NORMAL))
    return render(
        request,
        "web/intake/_category_hits.html",
        {"hits": list(zip(hits, limits, strict=True)), "query": query},
    )


# -- places ------------------------------------------------------------------------------------
def _place_names(text: str) -> set[str]:
    """The names of places an address may contain: each word ending in 街道, 社区, 村…,
    and each of its endings (``幸福路丙社区`` → ``丙社区``)."""
    names: set[str] = set()
    for word in PLACE_WORD.findall(text):
        names.update(word[i:] for i in range(len(word) - 1))
    return names


@login_required
@require_GET
def place_search(request: HttpRequest) -> HttpResponse:
    """htmx: the subdistricts, communities and grids the user may see whose name is
    typed, or appears in the address typed; picking one places the case at its centre."""
    user = role_user(request, INTAKE_ROLES)
    query = request.GET.get("address", "").strip()[:100]
    grids: list[Grid] = []
    if len(query) >= 2:
        condition = Q(name__icontains=query) | Q(code__startswith=query)
        names = _place_names(query)
        if names:
            condition |= Q(name__in=names)
        grids = list(
            visible_grids(user)
            .filter(condition, is_active=True)
            .only("id", "code", "name", "level", "centroid_lon", "centroid_lat")
            .order_by("-level", "path")[:PLACE_HITS]
        )
    return render(
        request,
        "web/intake/_place_hits.html",
        {"grids": grids, "query": query},
    )


def _point(request: HttpRequest) -> tuple[float, float, str] | None:
    try:
        lon = float(request.GET.get("lon", ""))
        lat = float(request.GET.get("lat", ""))
    except ValueError:
        return None
    return lon, lat, request.GET.get("crs") or crs.WGS84


@login_required
@require_GET
def locate_point(request: HttpRequest) -> HttpResponse:
    """htmx: the grid path a point falls in, or "不在辖区内"."""
    user = role_user(request, INTAKE_ROLES)
    point = _point(request)
    context: dict[str, Any] = {"point": point}
    if point is not None:
        try:
            where = locator.locate(*point)
        except ValueError as exc:
            context["error"] = str(exc)
        else:
            context["where"] = where
            if where.grid is not None:
                context["in_scope"] = visible_grids(user).filter(pk=where.grid.id).exists()
    return render(request, "web/intake/_place.html", context)


@login_required
@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    """htmx: cases of the category near the point and close in time, that the user
    may see, nearest first; each with a button to merge the call into it."""
    user = role_user(request, INTAKE_ROLES)
    point = _point(request)
    code = request.GET.get("category", "").strip()
    category = Category.objects.filter(code=code).first() if code else None
    found: list[tuple[Any, int]] = []
    if point is not None and category is not None:
        try:
            lon, lat = crs.to_storage(*point)
        except ValueError:
            lon = lat = None  # type: ignore[assignment]
        near = possible_duplicates(
            category=category, lon=lon, lat=lat, at=timezone.now(), limit=DUPLICATES_SHOWN
        )
        visible = set(
            visible_cases(user).filter(pk__in=[c.pk for c, _m in near]).values_list("pk", flat=True)
        )
        found = [(c, round(m)) for c, m in near if c.pk in visible]
    return render(
        request,
        "web/intake/_duplicates.html",
        {"found": found, "ready": point is not None and category is not None},
    )

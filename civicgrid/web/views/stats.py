"""The leader dashboard (``/stats/``), the big screen (``/stats/screen/``), their JSON
endpoints and their downloads.

Every view reads the scope from ``?grid=`` (default: the user's first statistics
root; outside the user's subtrees: 404, like no statistics role at all) and the
period from ``?period=&date=`` or ``?period=custom&from=&to=`` (a bad one: 400 with
the reason). The figures come from ``stats.dashboard`` (the rollup selectors).
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicgrid.core.routers import reads_from_replica
from civicgrid.grids.models import Grid, Level
from civicgrid.stats import dashboard, exports, measures
from civicgrid.stats.access import stats_scope, trail
from civicgrid.stats.periods import KINDS, Period, PeriodError, parse_period
from civicgrid.web.views.helpers import current_user

#: The big screen fetches its figures again every this many seconds (``?refresh=``
#: may ask for 10 … 600).
SCREEN_REFRESH_SECONDS = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"


def _scope(request: HttpRequest) -> tuple[Grid, list[Grid]]:
    raw = request.GET.get("grid", "").strip()
    if raw and not raw.isdigit():
        raise Http404
    return stats_scope(current_user(request), int(raw) if raw else None)


def _period(request: HttpRequest) -> Period:
    return parse_period(request.GET, today=timezone.localdate())


def _bad_period(error: PeriodError) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=400)


def _grid_ref(grid: Grid) -> dict[str, Any]:
    return {"id": grid.pk, "name": grid.name, "code": grid.code, "level": grid.level}


def scope_dict(grid: Grid, roots: list[Grid]) -> dict[str, Any]:
    """The scope and the way back up to the user's root."""
    path = trail(grid, roots)
    child = dashboard.child_level(grid)
    return {
        **_grid_ref(grid),
        "level_label": str(Level(grid.level).label),
        "child_level": child,
        "child_label": str(Level(child).label) if child is not None else "",
        "trail": [_grid_ref(g) for g in path],
        "up": path[-2].pk if len(path) > 1 else None,
        "roots": [_grid_ref(r) for r in roots],
    }


# -- the pages ---------------------------------------------------------------------------------
PERIOD_LABELS = {
    "today": gettext_lazy("今日"),
    "week": gettext_lazy("本周"),
    "month": gettext_lazy("本月"),
    "year": gettext_lazy("本年"),
    "custom": gettext_lazy("自定义"),
}


def _strings() -> dict[str, str]:
    """The words stats.js shows, translated here so one catalogue serves both."""
    return {
        "loading": _("正在加载…"),
        "loadFailed": _("加载失败，请稍后重试。"),
        "sessionExpired": _("登录已过期，请刷新页面重新登录。"),
        "received": _("接办"),
        "closed": _("办结"),
        "overdue": _("超期"),
        "noData": _("暂无数据"),
        "others": _("其他"),
        "heat": _("案件热力"),
        "areas": _("分区着色"),
        "updatedAt": _("更新于 {t}"),
        "heatNote": _("热力图取本时段最新的 {n} 件案件"),
        "noRate": _("无数据"),
    }


def _page_context(request: HttpRequest, *, mode: str) -> tuple[dict[str, Any], int]:
    grid, roots = _scope(request)
    status = 200
    error = ""
    try:
        period = _period(request)
    except PeriodError as exc:
        error, status = str(exc), 400
        period = parse_period({}, today=timezone.localdate())
    labels = {name: measures.label(name) for name in measures.MEASURES}
    labels["score"] = _("综合得分")
    refresh = SCREEN_REFRESH_SECONDS
    raw_refresh = request.GET.get("refresh", "")
    if raw_refresh.isdigit():
        refresh = min(max(int(raw_refresh), 10), 600)
    params = period.params()
    if period.kind != "custom" and not request.GET.get("date"):
        # No day asked for: "today" stays today on a screen left running overnight.
        params.pop("date")
    config = {
        "mode": mode,
        "grid": grid.pk,
        "period": params,
        "refresh": refresh if mode == "screen" else 0,
        "urls": {
            "data": reverse("stats-data"),
            "geo": reverse("stats-geo"),
            "heat": reverse("stats-heat"),
            "page": request.path,
        },
        "labels": labels,
        "strings": _strings(),
        "basemap": {
            "url": settings.CIVICGRID_BASEMAP_URL,
            "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
            "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        },
    }
    context = {
        "scope": scope_dict(grid, roots),
        "grid": grid,
        "period": period,
        "period_error": error,
        "period_kinds": [(k, PERIOD_LABELS[k]) for k in KINDS],
        "query": _query(grid, period),
        "period_query": urlencode(period.params()),
        "stats_config": config,
        "exports": EXPORT_LABELS,
        "kpis": [(name, labels[name]) for name in dashboard.KPIS],
        "reports": [(k, exports.REPORT_TITLES[k]) for k in ("day", "week", "month")],
    }
    return context, status


def _query(grid: Grid, period: Period) -> str:
    return urlencode({"grid": grid.pk, **period.params()})


@login_required
@require_GET
@reads_from_replica
def stats_dashboard(request: HttpRequest) -> HttpResponse:
    context, status = _page_context(request, mode="dashboard")
    return render(request, "web/stats/dashboard.html", context, status=status)


@login_required
@require_GET
@reads_from_replica
def stats_screen(request: HttpRequest) -> HttpResponse:
    context, status = _page_context(request, mode="screen")
    return render(request, "web/stats/screen.html", context, status=status)


# -- JSON ----------------------------------------------------------------------------------------
@login_required
@require_GET
@reads_from_replica
def stats_data(request: HttpRequest) -> JsonResponse:
    """Every figure of the pages for the scope and period (``stats.dashboard``)."""
    grid, roots = _scope(request)
    try:
        period = _period(request)
    except PeriodError as exc:
        return _bad_period(exc)
    data = dashboard.dashboard_data(scope=grid, period=period)
    data["scope"] = scope_dict(grid, roots)
    return JsonResponse(data)


@login_required
@require_GET
@reads_from_replica
def stats_geo(request: HttpRequest) -> JsonResponse:
    """The outlines of the areas under the scope (simplified, cached per tree version)."""
    grid, _roots = _scope(request)
    response = JsonResponse(dashboard.area_geojson(grid))
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_GET
@reads_from_replica
def stats_heat(request: HttpRequest) -> JsonResponse:
    """The heat map's cells for the scope and period."""
    grid, _roots = _scope(request)
    try:
        period = _period(request)
    except PeriodError as exc:
        return _bad_period(exc)
    return JsonResponse(dashboard.heat_points(scope=grid, start=period.start, end=period.end))


# -- downloads -----------------------------------------------------------------------------------
EXPORT_LABELS = {
    "kpis": gettext_lazy("概况"),
    "trend": gettext_lazy("趋势"),
    "major": gettext_lazy("大类"),
    "category": gettext_lazy("小类"),
    "channel": gettext_lazy("渠道"),
    "unit": gettext_lazy("责任单位考评"),
    "areas": gettext_lazy("区域考评"),
    "children": gettext_lazy("下级区域"),
}
FORMATS = ("xlsx", "csv")


def _download(body: bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_GET
@reads_from_replica
def stats_export(request: HttpRequest, table: str, fmt: str) -> HttpResponse:
    """One table of the pages as XLSX or CSV, for the same scope and period."""
    if table not in EXPORT_LABELS or fmt not in FORMATS:
        raise Http404
    grid, _roots = _scope(request)
    try:
        period = _period(request)
    except PeriodError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    built = dashboard.export_table(table, scope=grid, period=period)
    name = f"{grid.name}-{EXPORT_LABELS[table]}-{period.start.isoformat()}_{period.end.isoformat()}"
    if fmt == "csv":
        text = io.StringIO()
        exports.write_csv(built, text)
        return _download(text.getvalue().encode("utf-8-sig"), f"{name}.csv", CSV)
    buffer = io.BytesIO()
    exports.write_xlsx([built], buffer)
    return _download(buffer.getvalue(), f"{name}.xlsx", XLSX)


@login_required
@require_GET
@reads_from_replica
def stats_report(request: HttpRequest, kind: str) -> HttpResponse:
    """The centre's daily, weekly or monthly report (XLSX) of the period containing
    ``date`` (default: today), for the scope."""
    if kind not in exports.REPORT_TITLES:
        raise Http404
    grid, _roots = _scope(request)
    try:
        period = parse_period(
            {"period": "today", "date": request.GET.get("date", "")}, today=timezone.localdate()
        )
    except PeriodError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    buffer = io.BytesIO()
    exports.write_xlsx(exports.report_tables(kind=kind, day=period.anchor, scope=grid), buffer)
    title = exports.REPORT_TITLES[kind]
    return _download(
        buffer.getvalue(), f"{grid.name}-{title}-{period.anchor.isoformat()}.xlsx", XLSX
    )

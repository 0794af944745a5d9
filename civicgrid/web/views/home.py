"""工作台 (home) and the grid map."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids import crs
from civicgrid.grids.access import scope_roots
from civicgrid.grids.models import Grid, Kind, Level
from civicgrid.web.views.helpers import current_user

#: Level-3 grids are drawn by themselves from this zoom on (the layer control
#: shows them at any zoom); below it a district's hundreds of grids are clutter.
GRID_MIN_ZOOM = 14


def _bbox(grid: Grid) -> list[float]:
    return [grid.min_lon, grid.min_lat, grid.max_lon, grid.max_lat]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    memberships = (
        Membership.objects.active()
        .filter(user=user)
        .select_related("grid", "unit")
        .order_by("role", "grid__path", "unit__code")
    )
    roots = scope_roots(user)
    in_scope = Grid.objects.in_any_subtree(roots)
    per_level = dict(in_scope.order_by().values_list("level").annotate(n=Count("id")))
    workers = (
        Membership.objects.active()
        .filter(role=Role.GRID_WORKER, grid__in=in_scope)
        .values("user")
        .distinct()
        .count()
    )
    tiles = [
        (Level.SUBDISTRICT.label, per_level.get(Level.SUBDISTRICT, 0)),
        (Level.COMMUNITY.label, per_level.get(Level.COMMUNITY, 0)),
        (_("三级网格"), per_level.get(Level.GRID, 0)),
        (_("网格员"), workers),
    ]
    return render(
        request,
        "web/home.html",
        {"memberships": memberships, "roots": roots, "tiles": tiles},
    )


def _map_config(user: User) -> dict[str, Any]:
    roots = scope_roots(user)
    # Level-3 grids are fetched in chunks as the map comes to them: one chunk per
    # subdistrict (the roots' subdistricts for a district scope), or the root itself.
    district_ids = [r.pk for r in roots if r.level == Level.DISTRICT]
    chunks = list(
        Grid.objects.filter(parent_id__in=district_ids, level=Level.SUBDISTRICT).order_by("path")
    )
    chunks += [r for r in roots if r.level != Level.DISTRICT]
    return {
        "api": {
            "geojson": reverse("api-v1:grids_geojson"),
            "grids": reverse("api-v1:list_grids"),
            "detail": reverse("api-v1:grid_detail", args=[0]).removesuffix("0"),
            "locate": reverse("api-v1:locate"),
        },
        "basemap": {
            "url": settings.CIVICGRID_BASEMAP_URL,
            "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
            "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        },
        "roots": [{"id": r.pk, "level": r.level, "bbox": _bbox(r)} for r in roots],
        "chunks": [{"id": g.pk, "bbox": _bbox(g)} for g in chunks],
        "gridMinZoom": GRID_MIN_ZOOM,
        "levels": {int(value): str(label) for value, label in Level.choices},
        "kinds": {str(value): str(label) for value, label in Kind.choices},
    }


def _map_strings() -> dict[str, str]:
    """The words map.js shows, translated here so one catalogue serves both."""
    return {
        "loading": _("正在加载…"),
        "loadFailed": _("加载失败，请稍后重试。"),
        "sessionExpired": _("登录已过期，请刷新页面重新登录。"),
        "noScope": _("您的权限范围内没有网格。"),
        "zoomForGrids": _("放大地图以显示三级网格"),
        "searching": _("正在搜索…"),
        "noResults": _("没有找到匹配的网格。"),
        "resultCount": _("找到 {n} 个网格"),
        "resultsTruncated": _("只显示前 {n} 个，请输入更具体的名称或编码。"),
        "code": _("编码"),
        "kind": _("类型"),
        "path": _("层级路径"),
        "area": _("面积"),
        "children": _("下级网格"),
        "workers": _("网格员"),
        "noWorkers": _("暂未配置网格员"),
        "areaFormat": _("{km2} 平方公里（{m2} 平方米）"),
        "pointCoords": _("经度 {lon}，纬度 {lat}（WGS-84）"),
        "notVisible": _("该网格不存在或不在您的权限范围内。"),
        "close": _("关闭"),
        "fullExtent": _("全图"),
        "outside": _("不在辖区内"),
        "locatedIn": _("该点位于"),
        "viewGrid": _("查看网格详情"),
        "invalidPoint": _("请输入有效的经度和纬度。"),
        "pickHint": _("请在地图上点击要定位的位置"),
        "pickCancel": _("取消点选"),
        "pickStart": _("在地图上点选"),
        "lon": _("经度"),
        "lat": _("纬度"),
    }


@login_required
def grid_map(request: HttpRequest) -> HttpResponse:
    crs_choices = [
        (crs.WGS84, _("WGS-84（GPS）")),
        (crs.CGCS2000, _("CGCS2000（天地图）")),
        (crs.GCJ02, _("GCJ-02（高德、腾讯地图）")),
        (crs.BD09, _("BD-09（百度地图）")),
    ]
    return render(
        request,
        "web/map.html",
        {
            "map_config": _map_config(current_user(request)),
            "map_strings": _map_strings(),
            "crs_choices": crs_choices,
        },
    )

"""The versioned JSON API, ``/api/v1/``; its OpenAPI schema is ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

import shapely
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Query, Schema
from ninja.errors import HttpError

from civicgrid.accounts.models import Membership, Role
from civicgrid.api.auth import AUTH, KeyRefused, districts_q, in_districts
from civicgrid.api.cases import router as cases_router
from civicgrid.grids import crs, locator
from civicgrid.grids.access import get_grid_for_user, visible_grids
from civicgrid.grids.models import Grid

#: What any authenticated operation may answer before it runs (``auth.BearerToken``).
AUTH_RESPONSES: dict[str, dict[str, Any]] = {
    "401": {
        "description": "未登录、令牌或接口密钥无效或已吊销 / not signed in, or the token or key is invalid or revoked"
    },
    "403": {"description": "无权调用此接口（接口密钥的权限范围） / not allowed (the key's scopes)"},
    "429": {
        "description": "接口密钥调用过于频繁 / the key's rate limit: retry after the seconds given",
        "headers": {
            "Retry-After": {"description": "秒数 / seconds", "schema": {"type": "integer"}}
        },
    },
}


class CivicgridAPI(NinjaAPI):
    """The API whose schema also says what authentication may answer: 401, 403 and
    429 (with ``Retry-After``), each ``{"detail": …}``, on every secured operation."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        detail = {"application/json": {"schema": {"$ref": "#/components/schemas/AuthErrorOut"}}}
        schema.setdefault("components", {}).setdefault("schemas", {})["AuthErrorOut"] = {
            "title": "AuthErrorOut",
            "type": "object",
            "properties": {"detail": {"title": "Detail", "type": "string"}},
            "required": ["detail"],
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or not operation.get("security"):
                    continue
                responses = operation.setdefault("responses", {})
                for status, response in AUTH_RESPONSES.items():
                    # An operation's own 403 (a workflow refusal) has the same body.
                    responses.setdefault(status, {**response, "content": detail})
        return schema


api = CivicgridAPI(
    title="civicgrid API",
    version="1",
    description="网格化社会治理平台接口 / civicgrid platform API",
    auth=AUTH,
    urls_namespace="api-v1",
)
api.add_router("/", cases_router)


@api.exception_handler(KeyRefused)
def key_refused(request: HttpRequest, exc: KeyRefused) -> HttpResponse:
    """An integration key's call refused: 401, 403 or 429 with ``{"detail": …}``."""
    response = api.create_response(request, {"detail": exc.message}, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


class GridRefOut(Schema):
    id: int
    code: str
    name: str
    level: int


class LocationOut(Schema):
    inside: bool
    lon: float
    lat: float
    grid: GridRefOut | None
    path: list[GridRefOut]


class GridOut(Schema):
    id: int
    code: str
    name: str
    level: int
    kind: str
    parent_id: int | None
    area_m2: float
    centroid: list[float]
    is_active: bool


class WorkerOut(Schema):
    id: int
    name: str
    phone: str


class GridDetailOut(GridOut):
    path: list[GridRefOut]
    workers: list[WorkerOut]
    children: int
    geometry: dict[str, Any]


class GridFilter(Schema):
    level: int | None = None
    parent: int | None = None
    within: int | None = None
    q: str | None = None
    limit: int = Field(5000, ge=1, le=5000)


def _grid_out(g: Grid) -> dict[str, Any]:
    return {
        "id": g.pk,
        "code": g.code,
        "name": g.name,
        "level": g.level,
        "kind": g.kind,
        "parent_id": g.parent_id,
        "area_m2": g.area_m2,
        "centroid": [g.centroid_lon, g.centroid_lat],
        "is_active": g.is_active,
    }


def _filtered(request: HttpRequest, filters: GridFilter) -> Any:
    qs = visible_grids(request.user).filter(districts_q(request, "path"))  # type: ignore[arg-type]
    if filters.level is not None:
        qs = qs.filter(level=filters.level)
    if filters.parent is not None:
        qs = qs.filter(parent_id=filters.parent)
    if filters.within is not None:
        root = get_grid_for_user(request.user, filters.within)  # type: ignore[arg-type]
        qs = qs.in_subtree(root)
    if filters.q:
        from django.db.models import Q

        qs = qs.filter(Q(name__icontains=filters.q) | Q(code__startswith=filters.q))
    return qs


@api.get("/locate", response=LocationOut, summary="定位：点落在哪个网格")
def locate(request: HttpRequest, lon: float, lat: float, crs: str = crs.WGS84) -> dict[str, Any]:
    try:
        return locator.locate(lon, lat, crs).as_dict()
    except ValueError as exc:
        raise HttpError(400, str(exc)) from exc


@api.get("/grids", response=list[GridOut], summary="网格列表（本人权限范围内）")
def list_grids(request: HttpRequest, filters: Query[GridFilter]) -> list[dict[str, Any]]:
    qs = _filtered(request, filters).order_by("path")[: filters.limit]
    return [_grid_out(g) for g in qs]


@api.get("/grids/geojson", summary="网格边界 GeoJSON（本人权限范围内）")
def grids_geojson(request: HttpRequest, filters: Query[GridFilter]) -> dict[str, Any]:
    qs = _filtered(request, filters).order_by("path")[: filters.limit]
    features = []
    for g in qs:
        features.append(
            {
                "type": "Feature",
                "id": g.pk,
                "geometry": shapely.geometry.mapping(g.geometry),
                "properties": {
                    "id": g.pk,
                    "code": g.code,
                    "name": g.name,
                    "level": g.level,
                    "kind": g.get_kind_display(),
                    "parent_id": g.parent_id,
                    "area_m2": g.area_m2,
                    "centroid": [g.centroid_lon, g.centroid_lat],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


@api.get("/grids/{grid_id}", response=GridDetailOut, summary="网格详情")
def grid_detail(request: HttpRequest, grid_id: int) -> dict[str, Any]:
    grid = get_grid_for_user(request.user, grid_id)  # type: ignore[arg-type]
    if not in_districts(request, grid.path):
        raise Http404
    workers = (
        Membership.objects.active()
        .filter(grid=grid, role=Role.GRID_WORKER)
        .select_related("user")
        .order_by("user__display_name")
    )
    return {
        **_grid_out(grid),
        "path": [
            {"id": g.pk, "code": g.code, "name": g.name, "level": g.level} for g in grid.ancestors()
        ],
        "workers": [{"id": m.user.pk, "name": str(m.user), "phone": m.user.phone} for m in workers],
        "children": grid.children.count(),
        "geometry": shapely.geometry.mapping(grid.geometry),
    }

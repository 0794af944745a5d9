"""Cases through the API: intake, search, detail with timeline, and every transition."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from civicgrid.accounts.models import User
from civicgrid.api.auth import district_roots, districts_q, in_districts
from civicgrid.cases import selectors, services
from civicgrid.cases.access import get_case_for_user, visible_cases
from civicgrid.cases.errors import CaseConflict, CaseError, CaseForbidden
from civicgrid.cases.models import Attachment, AttachmentKind, Case, Category, Channel, Urgency
from civicgrid.cases.services.intake import take_in
from civicgrid.grids import crs, locator
from civicgrid.grids.access import get_grid_for_user
from civicgrid.grids.models import HandlingUnit

router = Router(tags=["cases"])


# -- schemas -----------------------------------------------------------------------
class Ref(Schema):
    id: int
    code: str
    name: str


class UnitRef(Schema):
    id: int
    code: str
    name: str


class CaseIn(Schema):
    channel: str = Channel.API
    category: str = Field(..., description="小类编码")
    description: str
    urgency: str = Urgency.NORMAL
    request_type: str = ""
    title: str = ""
    address: str = ""
    lon: float | None = None
    lat: float | None = None
    crs: str = Field(crs.WGS84, description="wgs84, cgcs2000, gcj02, bd09 或 EPSG:代码")
    requester_name: str = ""
    requester_phone: str = ""
    is_confidential: bool = False
    external_id: str = ""


class CaseOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    channel: str
    request_type: str
    category: Ref
    urgency: str
    title: str
    description: str
    address: str
    lon: float | None
    lat: float | None
    grid: Ref | None
    needs_location: bool
    lead_unit: UnitRef | None
    suggested_unit: UnitRef | None
    requester_name: str
    requester_phone: str
    is_confidential: bool
    external_id: str
    received_at: datetime
    due_at: datetime | None
    is_overdue: bool
    closed_at: datetime | None
    satisfaction: int | None
    rework_count: int
    reopen_count: int
    return_count: int
    urge_count: int
    version: int


class EventOut(Schema):
    id: int
    action: str
    action_label: str
    at: datetime
    actor: str
    actor_role: str
    unit: str
    from_status: str
    to_status: str
    reason: str
    payload: dict[str, Any]


class StageOut(Schema):
    stage: str
    stage_label: str
    started_at: datetime
    due_at: datetime
    finished_at: datetime | None
    met: bool | None
    overdue_at: datetime | None
    elapsed_seconds: float
    working_seconds: float
    limit: str


class AttachmentOut(Schema):
    id: int
    kind: str
    kind_label: str
    url: str
    thumbnail_url: str
    content_type: str
    width: int | None
    height: int | None
    lon: float | None
    lat: float | None
    taken_at: datetime | None
    uploaded_at: datetime


class MilestonesOut(Schema):
    to_accept: float | None
    to_dispatch: float | None
    to_acknowledge: float | None
    to_handle: float | None
    to_close: float | None


class CaseDetailOut(CaseOut):
    grid_path: list[Ref]
    assisting_units: list[UnitRef]
    result: str
    merged_into: int | None
    timeline: list[EventOut]
    stages: list[StageOut]
    milestones: MilestonesOut
    attachments: list[AttachmentOut]
    allowed_actions: list[str]


class CasePage(Schema):
    items: list[CaseOut]
    next_cursor: str | None


class CaseFilter(Schema):
    status: list[str] = Field(default_factory=list)
    category: str | None = None
    unit: int | None = None
    grid: int | None = None
    channel: str | None = None
    overdue: bool | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    q: str | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class NoteIn(Schema):
    note: str = ""


class ReasonIn(Schema):
    reason: str


class LocateIn(Schema):
    lon: float
    lat: float
    crs: str = crs.WGS84


class DispatchIn(Schema):
    unit: int
    assisting: list[int] = Field(default_factory=list)
    note: str = ""


class ExtensionIn(Schema):
    reason: str
    extra_amount: Decimal = Field(..., gt=0)


class DecisionIn(Schema):
    approve: bool
    note: str = ""


class HandleIn(Schema):
    result: str


class VerifyIn(Schema):
    passed: bool
    note: str = ""


class FollowUpIn(Schema):
    satisfaction: int = Field(..., ge=1, le=5)
    note: str = ""


class MergeIn(Schema):
    into: int
    note: str = ""


class DuplicateOut(Schema):
    case: CaseOut
    distance_m: float


class ErrorOut(Schema):
    detail: str


# -- serialisation -------------------------------------------------------------------
def _unit(u: HandlingUnit | None) -> dict[str, Any] | None:
    return {"id": u.pk, "code": u.code, "name": u.name} if u else None


def _case_out(case: Case, user: User, *, full: bool = False, grid: bool = True) -> dict[str, Any]:
    """The case as ``CaseOut``; ``full``: the requester unmasked for those who may see
    them; ``grid=False``: without reading ``case.grid`` (the caller fills it in)."""
    reveal = full and selectors.may_see_requester(user, case)
    return {
        "id": case.pk,
        "number": case.number,
        "status": case.status,
        "status_label": str(case.get_status_display()),
        "channel": case.channel,
        "request_type": case.request_type,
        "category": {
            "id": case.category.pk,
            "code": case.category.code,
            "name": str(case.category),
        },
        "urgency": case.urgency,
        "title": case.title,
        "description": case.description,
        "address": case.address,
        "lon": case.lon,
        "lat": case.lat,
        "grid": {"id": case.grid.pk, "code": case.grid.code, "name": case.grid.name}
        if grid and case.grid
        else None,
        "needs_location": case.needs_location,
        "lead_unit": _unit(case.lead_unit),
        "suggested_unit": _unit(case.suggested_unit),
        "requester_name": case.requester_name
        if reveal
        else selectors.mask_name(case.requester_name),
        "requester_phone": case.requester_phone
        if reveal
        else selectors.mask_phone(case.requester_phone),
        "is_confidential": case.is_confidential,
        "external_id": case.external_id,
        "received_at": case.received_at,
        "due_at": case.due_at,
        "is_overdue": case.is_overdue,
        "closed_at": case.closed_at,
        "satisfaction": case.satisfaction,
        "rework_count": case.rework_count,
        "reopen_count": case.reopen_count,
        "return_count": case.return_count,
        "urge_count": case.urge_count,
        "version": case.version,
    }


def _attachment_out(a: Attachment) -> dict[str, Any]:
    base = f"/api/v1/cases/{a.case_id}/attachments/{a.pk}"
    return {
        "id": a.pk,
        "kind": a.kind,
        "kind_label": str(a.get_kind_display()),
        "url": base,
        "thumbnail_url": base + "?thumbnail=true",
        "content_type": a.content_type,
        "width": a.width,
        "height": a.height,
        "lon": a.lon,
        "lat": a.lat,
        "taken_at": a.taken_at,
        "uploaded_at": a.uploaded_at,
    }


def _detail(case: Case, user: User) -> dict[str, Any]:
    out = _case_out(case, user, full=True)
    events = selectors.timeline(case)
    out.update(
        {
            "grid_path": [
                {"id": g.pk, "code": g.code, "name": g.name} for g in case.grid.ancestors()
            ]
            if case.grid
            else [],
            "assisting_units": [_unit(u) for u in case.assisting_units.all()],
            "result": case.result,
            "merged_into": case.merged_into_id,
            "timeline": events,
            "stages": selectors.stage_measures(case),
            "milestones": selectors.milestones(case, events=events),
            "attachments": [_attachment_out(a) for a in case.attachments.order_by("id")],
            "allowed_actions": selectors.allowed_actions(user, case),
        }
    )
    return out


def _with_relations(qs: Any) -> Any:
    return qs.select_related("category__parent", "grid", "lead_unit", "suggested_unit")


def _load(request: HttpRequest, case_id: int, version: int | None = None) -> Case:
    # The category with it: every transition reads its time limits.
    case = get_case_for_user(request.user, case_id, related=("category__parent",))  # type: ignore[arg-type]
    if not in_districts(request, case.grid_path):  # an integration key's districts
        raise Http404
    if version is not None and version != case.version:
        raise HttpError(409, "案件已被他人更新，请刷新后重试")
    return case


def _run(request: HttpRequest, fn: Any, **kwargs: Any) -> Any:
    """Call a service; its domain errors become 400/403/409 with the message."""
    try:
        return fn(actor=request.user, **kwargs)
    except CaseForbidden as exc:
        raise HttpError(403, exc.message) from exc
    except CaseConflict as exc:
        raise HttpError(409, exc.message) from exc
    except CaseError as exc:
        raise HttpError(400, exc.message) from exc


def _check_districts(request: HttpRequest, payload: CaseIn) -> None:
    """A key limited to districts files cases located inside them only."""
    roots = district_roots(request)
    if roots is None:
        return
    if payload.lon is None or payload.lat is None:
        raise HttpError(400, _("该接口密钥限定了辖区，登记案件须提供经纬度"))
    try:
        where = locator.locate(payload.lon, payload.lat, payload.crs)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from exc
    if not where.inside or where.path[0].id not in {root.pk for root in roots}:
        raise HttpError(403, _("该接口密钥无权在此位置所在辖区登记案件"))


# -- endpoints ---------------------------------------------------------------------------
INTAKE_DESCRIPTION = """
登记一件案件。返回案件本身（`CaseOut`：编号、状态、类别、网格、建议承办单位、当前环节时限等），
不含时间线、环节用时和可执行操作；`Location` 响应头是它的详情地址
（`GET /api/v1/cases/{id}`，含时间线、环节、附件和可执行操作）。
新登记返回 201；同一渠道的外部编号（`external_id`）或同一 `Idempotency-Key`
已登记过时返回 200 和已有的案件，不会重复登记。

Takes a case in. The body is the case itself (`CaseOut`), without the timeline,
stage measures and allowed actions; the `Location` header is its detail
(`GET /api/v1/cases/{id}`). 201 for a new case; 200 with the case already taken in
for the same channel and `external_id` or the same `Idempotency-Key`.
"""


def _intake_out(taken: Any, user: User) -> dict[str, Any]:
    """The 201 body from the objects the intake holds: the category and suggested unit
    it read, the grid the locator placed it in (no read of the case or its grid)."""
    case: Case = taken.case
    grid = taken.location.grid if taken.location is not None else None
    if grid is None and case.grid_id is not None:  # located by a path, not the locator
        return _case_out(_with_relations(Case.objects).get(pk=case.pk), user, full=True)
    out = _case_out(case, user, full=True, grid=False)
    out["grid"] = {"id": grid.id, "code": grid.code, "name": grid.name} if grid else None
    for name in ("received_at", "due_at"):  # in UTC, as the database gives them back
        if out[name] is not None:
            out[name] = out[name].astimezone(UTC)
    return out


@router.post(
    "/cases",
    response={201: CaseOut, 200: CaseOut, 400: ErrorOut},
    summary="登记案件（幂等：同一渠道外部编号或 Idempotency-Key 不会重复登记）",
    description=INTAKE_DESCRIPTION,
)
def create_case(request: HttpRequest, payload: CaseIn, response: HttpResponse) -> Any:
    # With what the routing suggestion reads of it: the default units and their grids.
    category = (
        Category.objects.filter(code=payload.category)
        .select_related("parent__default_unit__serves", "default_unit__serves")
        .defer("default_unit__serves__geom_wkb", "parent__default_unit__serves__geom_wkb")
        .first()
    )
    if category is None:
        raise HttpError(400, f"未知的类别编码：{payload.category}")
    _check_districts(request, payload)
    data = services.Intake(
        **payload.dict(exclude={"category"}),
        category=category,
        idempotency_key=request.headers.get("Idempotency-Key") or None,
    )
    taken = _run(request, take_in, data=data)
    user: User = request.user  # type: ignore[assignment]
    response["Location"] = f"/api/v1/cases/{taken.case.pk}"
    if taken.created:
        return Status(201, _intake_out(taken, user))
    case = _with_relations(Case.objects).get(pk=taken.case.pk)
    return Status(200, _case_out(case, user, full=True))


@router.get("/cases", response=CasePage, summary="案件检索（按接收时间倒序，游标分页）")
def search_cases(request: HttpRequest, filters: Query[CaseFilter]) -> dict[str, Any]:
    user: User = request.user  # type: ignore[assignment]
    wanted = selectors.CaseFilters(
        status=filters.status,
        category=filters.category or "",
        unit=filters.unit,
        grid=get_grid_for_user(user, filters.grid) if filters.grid is not None else None,
        channel=filters.channel or "",
        overdue=filters.overdue,
        received_from=filters.received_from,
        received_to=filters.received_to,
        q=filters.q or "",
    )
    visible = visible_cases(user).filter(districts_q(request, "grid_path"))
    qs = _with_relations(selectors.filter_cases(visible, wanted))
    try:
        page = selectors.page_cases(qs, after=filters.cursor or "", limit=filters.limit)
    except selectors.InvalidCursor as exc:
        raise HttpError(400, "无效的分页游标") from exc
    return {
        "items": [_case_out(c, user) for c in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/cases/{case_id}", response=CaseDetailOut, summary="案件详情与时间线")
def case_detail(request: HttpRequest, case_id: int) -> dict[str, Any]:
    case = _load(request, case_id)
    case = _with_relations(Case.objects).get(pk=case.pk)
    return _detail(case, request.user)  # type: ignore[arg-type]


@router.get("/cases/{case_id}/duplicates", response=list[DuplicateOut], summary="疑似重复案件")
def case_duplicates(request: HttpRequest, case_id: int) -> list[dict[str, Any]]:
    user: User = request.user  # type: ignore[assignment]
    case = _load(request, case_id)
    visible = set(
        visible_cases(user)
        .filter(districts_q(request, "grid_path"))
        .values_list("pk", flat=True)[:10000]
    )
    found = selectors.possible_duplicates(
        category=case.category, lon=case.lon, lat=case.lat, at=case.received_at, exclude_id=case.pk
    )
    return [
        {"case": _case_out(c, user), "distance_m": round(d, 1)} for c, d in found if c.pk in visible
    ]


def _transition(
    request: HttpRequest, case_id: int, version: int | None, fn: Any, **kwargs: Any
) -> dict[str, Any]:
    case = _load(request, case_id, version)
    result = _run(request, fn, case=case, **kwargs)
    if not (isinstance(result, Case) and result.pk == case.pk):
        # The services that return something else (an approval): read the case again.
        case = _with_relations(Case.objects).get(pk=case.pk)
    # else: the service reloaded it with its relations (``engine.reload``).
    return _detail(case, request.user)  # type: ignore[arg-type]


ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}
RESPONSES: dict[int, Any] = {200: CaseDetailOut, **ERRORS}


@router.post("/cases/{case_id}/accept", response=RESPONSES, summary="受理")
def accept(request: HttpRequest, case_id: int, body: NoteIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.accept_case, note=body.note)


@router.post("/cases/{case_id}/reject", response=RESPONSES, summary="不予受理")
def reject(request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.reject_case, reason=body.reason)


@router.post("/cases/{case_id}/locate", response=RESPONSES, summary="人工定位")
def locate(request: HttpRequest, case_id: int, body: LocateIn, version: int | None = None) -> Any:
    return _transition(
        request, case_id, version, services.locate_case, lon=body.lon, lat=body.lat, crs=body.crs
    )


@router.post("/cases/{case_id}/dispatch", response=RESPONSES, summary="派遣或改派")
def dispatch(
    request: HttpRequest, case_id: int, body: DispatchIn, version: int | None = None
) -> Any:
    unit = get_object_or_404(HandlingUnit, pk=body.unit)
    assisting = list(HandlingUnit.objects.filter(pk__in=body.assisting))
    if len(assisting) != len(set(body.assisting)):
        raise HttpError(400, "协办单位不存在")
    return _transition(
        request,
        case_id,
        version,
        services.dispatch_case,
        unit=unit,
        assisting=assisting,
        note=body.note,
    )


@router.post("/cases/{case_id}/acknowledge", response=RESPONSES, summary="签收")
def acknowledge(request: HttpRequest, case_id: int, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.acknowledge_case)


@router.post("/cases/{case_id}/send-back", response=RESPONSES, summary="回退")
def send_back(
    request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None
) -> Any:
    return _transition(request, case_id, version, services.send_back_case, reason=body.reason)


@router.post("/cases/{case_id}/extension", response=RESPONSES, summary="申请延期")
def request_extension(
    request: HttpRequest, case_id: int, body: ExtensionIn, version: int | None = None
) -> Any:
    return _transition(
        request,
        case_id,
        version,
        services.request_extension,
        reason=body.reason,
        extra_amount=body.extra_amount,
    )


@router.post("/cases/{case_id}/extension/decision", response=RESPONSES, summary="审批延期")
def decide_extension(
    request: HttpRequest, case_id: int, body: DecisionIn, version: int | None = None
) -> Any:
    return _transition(
        request,
        case_id,
        version,
        services.decide_extension,
        approve=body.approve,
        note=body.note,
    )


@router.post("/cases/{case_id}/park", response=RESPONSES, summary="挂账")
def park(request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.park_case, reason=body.reason)


@router.post("/cases/{case_id}/resume", response=RESPONSES, summary="恢复挂账案件")
def resume(request: HttpRequest, case_id: int, body: NoteIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.resume_case, note=body.note)


@router.post("/cases/{case_id}/handle", response=RESPONSES, summary="处置反馈")
def handle(request: HttpRequest, case_id: int, body: HandleIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.handle_case, result=body.result)


@router.post("/cases/{case_id}/verify", response=RESPONSES, summary="核查")
def verify(request: HttpRequest, case_id: int, body: VerifyIn, version: int | None = None) -> Any:
    return _transition(
        request, case_id, version, services.verify_case, passed=body.passed, note=body.note
    )


@router.post("/cases/{case_id}/close", response=RESPONSES, summary="结案")
def close(request: HttpRequest, case_id: int, body: NoteIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.close_case, note=body.note)


@router.post("/cases/{case_id}/follow-up", response=RESPONSES, summary="回访")
def follow_up(
    request: HttpRequest, case_id: int, body: FollowUpIn, version: int | None = None
) -> Any:
    return _transition(
        request,
        case_id,
        version,
        services.follow_up_case,
        satisfaction=body.satisfaction,
        note=body.note,
    )


@router.post("/cases/{case_id}/reopen", response=RESPONSES, summary="重办")
def reopen(request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.reopen_case, reason=body.reason)


@router.post("/cases/{case_id}/urge", response=RESPONSES, summary="督办")
def urge(request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None) -> Any:
    return _transition(request, case_id, version, services.urge_case, reason=body.reason)


@router.post("/cases/{case_id}/void", response=RESPONSES, summary="申请作废")
def request_void(
    request: HttpRequest, case_id: int, body: ReasonIn, version: int | None = None
) -> Any:
    return _transition(request, case_id, version, services.request_void, reason=body.reason)


@router.post("/cases/{case_id}/void/decision", response=RESPONSES, summary="审批作废")
def decide_void(
    request: HttpRequest, case_id: int, body: DecisionIn, version: int | None = None
) -> Any:
    return _transition(
        request, case_id, version, services.decide_void, approve=body.approve, note=body.note
    )


@router.post("/cases/{case_id}/merge", response=RESPONSES, summary="并单")
def merge(request: HttpRequest, case_id: int, body: MergeIn, version: int | None = None) -> Any:
    into = _load(request, body.into)
    return _transition(request, case_id, version, services.merge_case, into=into, note=body.note)


@router.post(
    "/cases/{case_id}/photos",
    response={201: list[AttachmentOut], **ERRORS},
    summary="上传照片（处置前、处置后、核查），全部成功或全部不保存",
)
def upload_photos(
    request: HttpRequest,
    case_id: int,
    kind: Form[str],
    photos: File[list[UploadedFile]],
) -> Any:
    case = _load(request, case_id)
    if kind not in AttachmentKind.values:
        raise HttpError(400, f"未知的照片类型：{kind}")
    rows = _run(request, services.attach_photos, case=case, uploads=list(photos), kind=kind)
    return Status(201, [_attachment_out(a) for a in rows])


@router.get(
    "/cases/{case_id}/attachments/{attachment_id}",
    response={200: None, 404: ErrorOut},
    summary="下载照片（与案件同样的访问权限）",
)
def download_attachment(
    request: HttpRequest, case_id: int, attachment_id: int, thumbnail: bool = False
) -> FileResponse:
    case = _load(request, case_id)
    attachment = get_object_or_404(Attachment, pk=attachment_id, case=case)
    field = attachment.thumbnail if thumbnail and attachment.thumbnail else attachment.file
    content_type = "image/jpeg" if field is attachment.thumbnail else attachment.content_type
    response = FileResponse(field.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response

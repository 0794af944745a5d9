"""Taking in a case from any channel, and the grid worker's on-the-spot fix."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases import routing
from civicgrid.cases.access import roles_on_case
from civicgrid.cases.errors import CaseError, CaseForbidden, IntakeError
from civicgrid.cases.models import (
    Action,
    Case,
    Category,
    Channel,
    RequestType,
    Status,
    Urgency,
)
from civicgrid.cases.services.engine import (
    move,
    record_event,
    reload,
    stage_start,
)
from civicgrid.grids import crs as crs_mod
from civicgrid.grids import locator
from civicgrid.grids.models import Grid
from civicgrid.stats import rollups

TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class Intake:
    """What a channel knows about a new case."""

    channel: str
    category: Category
    description: str
    urgency: str = Urgency.NORMAL
    request_type: str = ""
    title: str = ""
    address: str = ""
    lon: float | None = None
    lat: float | None = None
    crs: str = crs_mod.WGS84
    requester_name: str = ""
    requester_phone: str = ""
    is_confidential: bool = False
    external_id: str = ""
    idempotency_key: str | None = None
    received_at: datetime | None = None


def _existing(data: Intake) -> Case | None:
    """The case already taken in with the same channel and external id, else with the
    same idempotency key (one query for both)."""
    by_external = Q(channel=data.channel, external_id=data.external_id)
    if data.external_id and data.idempotency_key:
        found = list(Case.objects.filter(by_external | Q(idempotency_key=data.idempotency_key)))
        for case in found:  # at most two: both are unique
            if case.channel == data.channel and case.external_id == data.external_id:
                return case
        return found[0] if found else None
    if data.external_id:
        return Case.objects.filter(by_external).first()
    if data.idempotency_key:
        return Case.objects.filter(idempotency_key=data.idempotency_key).first()
    return None


def _check_intake(data: Intake) -> None:
    if data.channel not in Channel.values:
        raise IntakeError(_("未知的来源渠道：%(c)s") % {"c": data.channel})
    if data.urgency not in Urgency.values:
        raise IntakeError(_("未知的紧急程度：%(u)s") % {"u": data.urgency})
    if data.request_type and data.request_type not in RequestType.values:
        raise IntakeError(_("未知的诉求类型：%(t)s") % {"t": data.request_type})
    if not data.description or not data.description.strip():
        raise IntakeError(_("请填写问题描述"))
    if data.category.parent_id is None:
        raise IntakeError(_("请选择小类，而不是大类“%(name)s”") % {"name": data.category.name})
    if not data.category.is_active:
        raise IntakeError(_("类别“%(name)s”已停用") % {"name": data.category.name})
    if (data.lon is None) != (data.lat is None):
        raise IntakeError(_("经度和纬度须同时提供"))


def _tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(10))


@dataclass
class Taken:
    """What ``take_in`` did: the case, whether it is new, and for a new located case
    the grid and the ancestors it was placed in (the locator's, so nobody has to read
    the grid again to show where it is)."""

    case: Case
    created: bool
    location: locator.Location | None = None


def create_case(*, data: Intake, actor: User | None = None) -> tuple[Case, bool]:
    """Take in a case from any channel. Returns the case and whether it is new.

    The same channel and external id, or the same idempotency key, returns the
    case already taken in. A point outside the jurisdiction is refused; a case
    without coordinates is kept for manual location.
    """
    taken = take_in(data=data, actor=actor)
    return taken.case, taken.created


def _grid_path(where: locator.Location) -> str | None:
    """The grid's materialised path from the locator's chain of ancestors, when the
    chain reaches the root (an inactive ancestor cuts it: then ``None``)."""
    if not where.path or where.path[0].level != 0:
        return None
    return "/" + "/".join(str(ref.id) for ref in where.path) + "/"


def take_in(*, data: Intake, actor: User | None = None) -> Taken:
    """``create_case``, saying also where the case was placed. One transaction: the
    idempotency lookup, the routing suggestion and the time limit are read in it, the
    case is written with its number, first deadline and ``due_at`` (an INSERT and one
    UPDATE), then its event, its deadline and its statistics."""
    _check_intake(data)
    try:
        with transaction.atomic():
            return _take_in(data, actor)
    except IntegrityError:
        # Two requests with the same external id or key raced; the other won.
        existing = _existing(data)
        if existing is None:
            raise
        return Taken(existing, False)


def _take_in(data: Intake, actor: User | None) -> Taken:
    existing = _existing(data)
    if existing is not None:
        return Taken(existing, False)

    where: locator.Location | None = None
    grid_id: int | None = None
    grid_path = ""
    lon = lat = None
    if data.lon is not None and data.lat is not None:
        try:
            where = locator.locate(data.lon, data.lat, data.crs)
        except ValueError as exc:
            raise IntakeError(str(exc)) from exc
        if not where.inside or where.grid is None:
            raise IntakeError(
                _("位置 (%(lon)s, %(lat)s) 不在辖区内") % {"lon": data.lon, "lat": data.lat}
            )
        grid_id = where.grid.id
        path = _grid_path(where)
        if path is None:  # an inactive ancestor: the tree's own path
            path = Grid.objects.filter(pk=grid_id).values_list("path", flat=True).get()
        grid_path = path
        lon, lat = where.lon, where.lat

    located = grid_id is not None
    received_at = data.received_at or timezone.now()
    worker_report = data.channel == Channel.GRID_WORKER and actor is not None and located
    status = Status.FILED if worker_report else Status.NEW
    suggestion = routing.suggest_at(category=data.category, path=grid_path) if located else None
    case = Case(
        number=f"T{secrets.token_hex(8)}",
        tracking_code=_tracking_code(),
        channel=data.channel,
        request_type=data.request_type,
        category=data.category,
        urgency=data.urgency,
        status=status,
        title=data.title.strip()[:200],
        description=data.description.strip(),
        address=data.address.strip(),
        lon=lon,
        lat=lat,
        input_crs=crs_mod.normalize(data.crs) if lon is not None else "",
        grid_id=grid_id,
        grid_path=grid_path,
        needs_location=not located,
        requester_name=data.requester_name.strip(),
        requester_phone=data.requester_phone.strip(),
        is_confidential=data.is_confidential,
        external_id=data.external_id.strip(),
        idempotency_key=data.idempotency_key or None,
        suggested_unit=suggestion.lead if suggestion else None,
        created_by=actor,
        received_at=received_at,
    )
    start = stage_start(case, status, received_at)
    case.due_at = start.due if start else None
    case.save(force_insert=True)
    case.number = f"{timezone.localtime(received_at):%Y%m%d}{case.pk:07d}"
    Case.objects.filter(pk=case.pk).update(number=case.number)
    event = record_event(
        case,
        action=Action.CREATE,
        actor=actor,
        role="",
        to_status=status,
        at=received_at,
        public=True,
        payload={"channel": data.channel},
    )
    deadlines = [start.create(case)] if start else []
    rollups.record_intake(case, events=[event], deadlines=deadlines)
    return Taken(case, True, where)


def self_handle_case(*, data: Intake, actor: User, result: str) -> Case:
    """自处理: a grid worker fixed a small problem on the spot; it goes to verification."""
    if not result.strip():
        raise CaseError(_("请填写处置结果"))
    data.channel = Channel.GRID_WORKER
    with transaction.atomic():
        case, created = create_case(data=data, actor=actor)
        if not created:
            return case
        if Role.GRID_WORKER not in roles_on_case(actor, case):
            raise CaseForbidden(_("只有该网格的网格员可以自处理"))
        move(
            case,
            action=Action.SELF_HANDLE,
            actor=actor,
            role=Role.GRID_WORKER,
            to_status=Status.HANDLED,
            reason=result,
            public=True,
            updates={"result": result.strip()},
        )
    return reload(case)

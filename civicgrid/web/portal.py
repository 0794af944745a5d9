"""The citizen portal's rate limits, access grants and public reads.

The pages are in ``civicgrid.web.views.portal``, the forms in ``civicgrid.web.forms.portal``. Nothing here shows a
citizen more than the public part of a case: its status in citizens' words, its
category, the public events (time, action, public reason) and its before and
after photos. No names of staff or units, no internal notes, no requester data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicgrid.cases.models import (
    Action,
    AttachmentKind,
    Case,
    Category,
    CategoryKind,
    Channel,
    Status,
)
from civicgrid.cases.services.citizen import CITIZEN
from civicgrid.grids import locator
from civicgrid.grids.models import Grid, Level
from civicgrid.open311.privacy import public_text

# -- words for citizens ------------------------------------------------------------------
#: A case's status as the citizen reads it. Internal steps (a unit sending a case
#: back, parking) are told without their internal meaning.
PUBLIC_STATUS: dict[str, Any] = {
    Status.NEW: gettext_lazy("已提交，等待受理"),
    Status.REJECTED: gettext_lazy("不予受理"),
    Status.FILED: gettext_lazy("已受理，等待派遣"),
    Status.DISPATCHED: gettext_lazy("已派遣至责任单位"),
    Status.RETURNED: gettext_lazy("正在重新派遣"),
    Status.IN_PROGRESS: gettext_lazy("处置中"),
    Status.HANDLED: gettext_lazy("已处置，等待核查"),
    Status.CLOSED: gettext_lazy("已办结"),
    Status.PARKED: gettext_lazy("暂缓处理"),
    Status.VOIDED: gettext_lazy("已撤销"),
    Status.MERGED: gettext_lazy("已与其他反映合并办理"),
}
#: The progress steps the status bar shows, and the step each status is at.
STEPS = [
    gettext_lazy("提交"),
    gettext_lazy("受理"),
    gettext_lazy("派遣"),
    gettext_lazy("处置"),
    gettext_lazy("办结"),
]
STEP_OF_STATUS: dict[str, int] = {
    Status.NEW: 0,
    Status.FILED: 1,
    Status.RETURNED: 1,
    Status.PARKED: 1,
    Status.DISPATCHED: 2,
    Status.IN_PROGRESS: 3,
    Status.HANDLED: 3,
    Status.CLOSED: len(STEPS),  # every step done
}
#: Five levels of satisfaction, best first.
SATISFACTION_CHOICES = [
    (5, gettext_lazy("非常满意")),
    (4, gettext_lazy("满意")),
    (3, gettext_lazy("基本满意")),
    (2, gettext_lazy("不满意")),
    (1, gettext_lazy("非常不满意")),
]


def satisfaction_label(level: object) -> str:
    """The words of a satisfaction level (5 → 非常满意); empty for anything else."""
    return next((str(label) for value, label in SATISFACTION_CHOICES if value == level), "")


#: The photos a citizen may see: the problem and the result, not the verification.
PUBLIC_PHOTO_KINDS = (AttachmentKind.BEFORE, AttachmentKind.AFTER)


# -- the category picker -------------------------------------------------------------------
def major_groups() -> list[tuple[str, list[Category]]]:
    """The active 大类, grouped by kind (部件, 事件, 12345 诉求) for the picker."""
    majors = list(Category.objects.active().majors().order_by("sort_order", "code"))
    groups = []
    for kind, label in CategoryKind.choices:
        members = [c for c in majors if c.kind == kind]
        if members:
            groups.append((str(label), members))
    return groups


def minors_of(major_id: object) -> list[Category]:
    """The active 小类 of a 大类 (none for anything that is not a 大类's id)."""
    try:
        pk = int(str(major_id))
    except (TypeError, ValueError):
        return []
    return list(
        Category.objects.active()
        .filter(parent_id=pk, parent__is_active=True, parent__parent__isnull=True)
        .order_by("sort_order", "code")
    )


# -- rate limits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Limit:
    """So many requests per window for one kind of thing and one client or phone."""

    name: str
    setting: str

    @property
    def allowed(self) -> int:
        return int(getattr(settings, self.setting))


REPORTS_PER_ADDRESS = Limit("report-address", "CIVICGRID_PORTAL_REPORTS_PER_ADDRESS")
REPORTS_PER_PHONE = Limit("report-phone", "CIVICGRID_PORTAL_REPORTS_PER_PHONE")
LOOKUPS_PER_ADDRESS = Limit("lookup-address", "CIVICGRID_PORTAL_LOOKUPS_PER_ADDRESS")


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry that the configured number
    of trusted reverse proxies put into ``X-Forwarded-For``."""
    hops: int = settings.CIVICGRID_PORTAL_PROXY_COUNT
    if hops > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        parts = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(parts) >= hops:
            return parts[-hops]
    return str(request.META.get("REMOTE_ADDR", ""))


def _cache() -> BaseCache:
    return caches[settings.CIVICGRID_PORTAL_CACHE]


def _window() -> tuple[int, int]:
    """The current window's number and the seconds left in it."""
    length = max(1, int(settings.CIVICGRID_PORTAL_WINDOW_SECONDS))
    now = int(time.time())
    return now // length, length - now % length


def _key(limit: Limit, value: str, window: int) -> str:
    # Keyed, so that the cache holds no phone number (nor one easily guessed back).
    digest = salted_hmac("civicgrid.portal.limit", f"{limit.name}:{value}").hexdigest()[:32]
    return f"civicgrid:portal:{limit.name}:{digest}:{window}"


def limit_reached(limit: Limit, value: str) -> bool:
    """Whether ``value`` used up its allowance already (without counting this request)."""
    if limit.allowed <= 0:
        return False
    window, _left = _window()
    return int(_cache().get(_key(limit, value, window), 0)) >= limit.allowed


def count_request(limit: Limit, value: str) -> bool:
    """Count one request of ``value``; whether it is over the limit."""
    if limit.allowed <= 0:
        return False
    window, left = _window()
    key = _key(limit, value, window)
    cache = _cache()
    cache.add(key, 0, timeout=left + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=left + 5)
        count = 1
    return int(count) > limit.allowed


def retry_after_seconds() -> int:
    return _window()[1]


# -- access to a case, proven once per browser session ----------------------------------------
GRANTS = "civicgrid_portal_cases"
MAX_GRANTS = 20


def grant_access(request: HttpRequest, case: Case, phone: str) -> None:
    """Remember in the session that this browser proved code and phone for ``case``."""
    now = time.time()
    grants = {
        code: grant
        for code, grant in dict(request.session.get(GRANTS, {})).items()
        if isinstance(grant, dict) and grant.get("until", 0) > now
    }
    grants[case.tracking_code] = {
        "phone": phone,
        "until": now + 60 * settings.CIVICGRID_PORTAL_ACCESS_MINUTES,
    }
    newest = sorted(grants.items(), key=lambda item: item[1]["until"])[-MAX_GRANTS:]
    request.session[GRANTS] = dict(newest)


def granted_phone(request: HttpRequest, code: str) -> str | None:
    """The phone number this browser proved for tracking code ``code``, if it still may."""
    grant = request.session.get(GRANTS, {}).get(code)
    if not isinstance(grant, dict) or grant.get("until", 0) <= time.time():
        return None
    phone = grant.get("phone")
    return phone if isinstance(phone, str) else None


# -- public reads --------------------------------------------------------------------------
@dataclass(frozen=True)
class PublicEvent:
    at: datetime
    label: str
    reason: str
    satisfaction: str = ""


def public_timeline(case: Case) -> list[PublicEvent]:
    """The public events of a case: when, what, and the public reason; nothing of who."""
    out = []
    events = case.events.filter(is_public=True).order_by("at", "id")
    for action, at, reason, payload, actor_id, actor_name in events.values_list(
        "action", "at", "reason", "payload", "actor_id", "actor__display_name"
    ):
        # What staff wrote is masked as the Open311 feed masks it (phones, ID numbers,
        # e-mail addresses, the requester's and the writer's names).
        reason = public_text(reason, names=(case.requester_name, actor_name or ""))
        label = str(Action(action).label)
        satisfaction = ""
        if action == Action.FOLLOW_UP and actor_id is None and payload.get("source") == CITIZEN:
            label = _("市民评价")
            satisfaction = satisfaction_label(payload.get("satisfaction"))
        elif action == Action.CREATE:
            label = _("提交反映") if case.channel == Channel.WEB else _("登记")
        elif action == Action.REDISPATCH:
            label = _("重新派遣")
        elif action == Action.MERGE:
            reason = ""  # it names the other case
        out.append(PublicEvent(at=at, label=label, reason=reason, satisfaction=satisfaction))
    return out


def public_photos(case: Case) -> dict[str, list[int]]:
    """The ids of the case's before and after photos."""
    photos: dict[str, list[int]] = {kind: [] for kind in PUBLIC_PHOTO_KINDS}
    rows = case.attachments.filter(kind__in=PUBLIC_PHOTO_KINDS).order_by("uploaded_at", "id")
    for pk, kind in rows.values_list("pk", "kind"):
        photos[kind].append(pk)
    return photos


#: Simplification tolerance of the public outline, in degrees (about 20 m).
OUTLINE_TOLERANCE = 0.0002


def district_outline() -> dict[str, Any]:
    """The jurisdiction for the citizen's map: the districts and their subdistricts,
    simplified, with their names and levels only. Cached until the grid tree changes."""
    version, token = locator.current_version()
    key = f"civicgrid:portal:outline:{version}:{token}"
    cache = _cache()
    outline: dict[str, Any] | None = cache.get(key)
    if outline is None:
        features = []
        grids = Grid.objects.active().filter(level__in=(Level.DISTRICT, Level.SUBDISTRICT))
        for grid in grids.order_by("level", "path"):
            shape = shapely.set_precision(
                shapely.simplify(grid.geometry, OUTLINE_TOLERANCE, preserve_topology=True),
                0.00001,
            )
            features.append(
                {
                    "type": "Feature",
                    "geometry": shapely.geometry.mapping(shape),
                    "properties": {"name": grid.name, "level": grid.level},
                }
            )
        outline = {"type": "FeatureCollection", "features": features}
        cache.set(key, outline, timeout=24 * 3600)
    return outline

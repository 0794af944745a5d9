"""Sending the outbox: claim due deliveries, POST them signed, log each attempt, back off.

Ordering: a delivery is due only when no earlier delivery of the same case to the
same subscription is still pending or failed, so a receiver sees each case's events
in the order they happened. Claiming: on PostgreSQL the candidates are read with
``SELECT … FOR UPDATE SKIP LOCKED``; on every database the claim itself is a
conditional UPDATE that sets a lease (``claimed_until``), so of several workers
exactly one takes a delivery, and a worker that dies mid-delivery lets it go when
the lease runs out (the event is then sent again: at least once, never lost).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from civicgrid.cases.models import Category, Status
from civicgrid.grids.models import Grid, HandlingUnit
from civicgrid.webhooks.models import BLOCKING, Attempt, Delivery, DeliveryStatus

logger = logging.getLogger("civicgrid.webhooks")

USER_AGENT = "civicgrid-webhooks/1"
SIGNATURE_HEADER = "X-Civicgrid-Signature"
TIMESTAMP_HEADER = "X-Civicgrid-Timestamp"
EVENT_ID_HEADER = "X-Civicgrid-Event-Id"
EVENT_TYPE_HEADER = "X-Civicgrid-Event"
DELIVERY_HEADER = "X-Civicgrid-Delivery"

#: The first retry waits this long; each further one twice as long, up to the cap.
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 4 * 3600.0
#: Each wait is stretched or shrunk by up to this fraction, at random.
JITTER = 0.2
EXCERPT_CHARS = 500


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1-based)."""
    base = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    factor = 1 + JITTER * (2 * (rng or random).random() - 1)
    return timedelta(seconds=base * factor)


def lease() -> timedelta:
    return timedelta(seconds=float(settings.CIVICGRID_WEBHOOKS_TIMEOUT_SECONDS) + 50)


# -- signing ---------------------------------------------------------------------------
def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# -- the body --------------------------------------------------------------------------
def _ref(model: Any, pk: int | None) -> dict[str, str] | None:
    if pk is None:
        return None
    row = model.objects.filter(pk=pk).values("code", "name").first()
    return {"code": row["code"], "name": row["name"]} if row else None


def render_body(delivery: Delivery) -> str:
    """The JSON body of a delivery, from its snapshot (codes and names looked up now)."""
    snap = delivery.snapshot
    case = dict(snap["case"])
    category = Category.objects.filter(pk=case.pop("category_id")).select_related("parent").first()
    case["status_label"] = str(Status(case["status"]).label) if case["status"] else ""
    case["category"] = (
        {
            "code": category.code,
            "name": category.name,
            "major": {"code": category.parent.code, "name": category.parent.name}
            if category.parent
            else None,
        }
        if category
        else None
    )
    case["grid"] = _ref(Grid, case.pop("grid_id"))
    case["lead_unit"] = _ref(HandlingUnit, case.pop("lead_unit_id"))
    document = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "occurred_at": timezone.localtime(delivery.occurred_at).isoformat(),
        "change": {
            "action": snap["action"],
            "from_status": snap["from_status"],
            "to_status": snap["to_status"],
            "note": snap["note"],
        },
        "case": case,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# -- claiming --------------------------------------------------------------------------
def due(now: datetime) -> Any:
    """Pending deliveries whose time has come, not held by a worker, first in line."""
    earlier = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        case_id=OuterRef("case_id"),
        id__lt=OuterRef("id"),
        status__in=BLOCKING,
    )
    return (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .exclude(Exists(earlier))
        .order_by("id")
    )


def anything_due() -> bool:
    """Whether a delivery may be due (one indexed query; the worker asks before enqueuing)."""
    return Delivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


def _take(ids: list[int], now: datetime, worker: str) -> list[int]:
    taken = []
    for pk in ids:
        won = (
            Delivery.objects.filter(pk=pk, status=DeliveryStatus.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=now + lease(), claimed_by=worker)
        )
        if won:
            taken.append(pk)
    return taken


def claim(*, limit: int = 20, worker: str = "", now: datetime | None = None) -> list[Delivery]:
    """Take up to ``limit`` due deliveries for this worker (a lease, not a lock)."""
    now = now or timezone.now()
    worker = worker or secrets.token_hex(8)
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(
                due(now).select_for_update(skip_locked=True).values_list("id", flat=True)[:limit]
            )
            taken = _take(ids, now, worker)
    else:
        # SQLite: writes are serialised; the conditional UPDATE alone decides.
        taken = _take(list(due(now).values_list("id", flat=True)[:limit]), now, worker)
    return list(
        Delivery.objects.filter(pk__in=taken, claimed_by=worker)
        .select_related("subscription__integration")
        .order_by("id")
    )


# -- sending ---------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer, not a success


_opener = urllib.request.build_opener(_NoRedirect())


@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    duration_ms: int
    error: str
    excerpt: str


def _excerpt(raw: bytes) -> str:
    return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    if not url.lower().startswith(("http://", "https://")):
        return Outcome(False, None, 0, "只支持 http 和 https 推送地址", "")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    started = time.perf_counter()
    status: int | None = None
    error = excerpt = ""
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
            excerpt = _excerpt(response.read(EXCERPT_CHARS * 4))
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = f"HTTP {exc.code}"
        with contextlib.suppress(OSError):
            excerpt = _excerpt(exc.read(EXCERPT_CHARS * 4))
    except (OSError, ValueError) as exc:  # refused, timed out, TLS, a bad URL
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration = round((time.perf_counter() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    return Outcome(ok, status, max(0, duration), error, excerpt)


def send(delivery: Delivery, *, rng: random.Random | None = None) -> Attempt:
    """POST one claimed delivery, log the attempt and settle its state."""
    subscription = delivery.subscription
    if not delivery.body:
        delivery.body = render_body(delivery)
        Delivery.objects.filter(pk=delivery.pk).update(body=delivery.body)
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: delivery.event_id,
        EVENT_TYPE_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
    }
    started_at = timezone.now()
    outcome = post(
        subscription.target_url,
        body,
        headers,
        float(settings.CIVICGRID_WEBHOOKS_TIMEOUT_SECONDS),
    )
    now = timezone.now()
    attempt = Attempt.objects.create(
        delivery=delivery,
        at=started_at,
        status_code=outcome.status_code,
        duration_ms=outcome.duration_ms,
        ok=outcome.ok,
        error=outcome.error,
        response_excerpt=outcome.excerpt,
    )
    attempts = delivery.attempts + 1
    first = delivery.first_attempt_at or started_at
    changes: dict[str, Any] = {
        "attempts": attempts,
        "first_attempt_at": first,
        "last_attempt_at": started_at,
        "claimed_until": None,
        "claimed_by": "",
    }
    if outcome.ok:
        changes.update(status=DeliveryStatus.DELIVERED, delivered_at=now, last_error="")
    else:
        changes["last_error"] = (outcome.error or f"HTTP {outcome.status_code}")[:500]
        give_up = timedelta(hours=float(settings.CIVICGRID_WEBHOOKS_GIVE_UP_HOURS))
        if now - first >= give_up:
            changes["status"] = DeliveryStatus.FAILED
        else:
            changes["next_attempt_at"] = now + retry_delay(attempts, rng=rng)
    # Only the holder of the claim settles it (a worker whose lease ran out does not).
    Delivery.objects.filter(pk=delivery.pk, claimed_by=delivery.claimed_by).update(**changes)
    for name, value in changes.items():
        setattr(delivery, name, value)
    return attempt


def deliver_due(
    *, limit: int = 20, budget_seconds: float = 50.0, worker: str = ""
) -> dict[str, int]:
    """Send what is due, batch after batch, until none is left or time is up."""
    worker = worker or secrets.token_hex(8)
    counts = {"delivered": 0, "failed": 0}
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        batch = claim(limit=limit, worker=worker)
        if not batch:
            break
        for delivery in batch:
            subscription = delivery.subscription
            if not (subscription.is_active and subscription.integration.is_usable):
                Delivery.objects.filter(pk=delivery.pk).update(
                    status=DeliveryStatus.CANCELLED, claimed_until=None, claimed_by=""
                )
                continue
            try:
                attempt = send(delivery)
            except Exception:  # never let one delivery stop the others
                logger.exception("webhook delivery %s failed", delivery.pk)
                Delivery.objects.filter(pk=delivery.pk, claimed_by=worker).update(
                    claimed_until=None, claimed_by=""
                )
                counts["failed"] += 1
                continue
            counts["delivered" if attempt.ok else "failed"] += 1
    return counts

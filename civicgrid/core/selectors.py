"""Reads of the platform plumbing: what /healthz reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from civicgrid.core.models import WorkerHeartbeat


def health() -> dict[str, Any]:
    """Database reachability and live background workers."""
    report: dict[str, Any] = {"status": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        report["database"] = {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # the point of a health check is to report any failure
        report["status"] = "error"
        report["database"] = {"status": "error", "error": str(exc)}
        report["worker"] = {"status": "unknown"}
        return report
    cutoff = timezone.now() - timedelta(seconds=settings.CIVICGRID_WORKER_STALE_SECONDS)
    alive = WorkerHeartbeat.objects.filter(last_seen__gte=cutoff)
    count = alive.count()
    last = (
        WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    )
    report["worker"] = {
        "status": "ok" if count else "down",
        "alive": count,
        "last_seen": timezone.localtime(last).isoformat() if last else None,
    }
    if not count:
        report["status"] = "degraded"
    return report

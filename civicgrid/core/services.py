"""Writes of the platform plumbing."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.utils import timezone

from civicgrid.core.models import WorkerHeartbeat


def beat(*, worker_id: str, started_at: datetime) -> None:
    """Record that ``worker_id`` is alive now."""
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen": timezone.now(),
        },
    )


def stop(*, worker_id: str) -> None:
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()

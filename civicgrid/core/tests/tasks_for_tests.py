"""A task the worker tests enqueue: it writes a row the test can see."""

from __future__ import annotations

import time

from django.utils import timezone
from django_tasks import task

from civicgrid.core.models import WorkerHeartbeat


@task()
def leave_a_mark(worker_id: str) -> str:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id=worker_id, started_at=now, last_seen=now)
    return worker_id


@task()
def mark_slowly(mark: str, seconds: float) -> str:
    """Takes a while, so that several workers run at once; leaves one row per run."""
    time.sleep(seconds)
    now = timezone.now()
    # worker_id is unique: a second run of the same job would fail, not hide.
    WorkerHeartbeat.objects.create(worker_id=mark, started_at=now, last_seen=now)
    return mark

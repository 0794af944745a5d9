"""A task the worker tests enqueue: it writes a row the test can see."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from civicgrid.core.models import WorkerHeartbeat


@task()
def leave_a_mark(worker_id: str) -> str:
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id=worker_id, started_at=now, last_seen=now)
    return worker_id

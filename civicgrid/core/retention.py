"""Deleting old rows in small batches: finished task results (here), delivered
webhooks (``webhooks.retention``).

Each batch is its own short transaction: on PostgreSQL its rows are picked with
``FOR UPDATE SKIP LOCKED``, so two workers cleaning up at once take different rows
and never wait for each other; no lock is held longer than one batch's DELETE.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

BATCH = 500
#: One clean-up run stops after this long; the next period goes on from there.
BUDGET_SECONDS = 30.0


def purge(queryset: Any, *, batch: int = BATCH, budget_seconds: float = BUDGET_SECONDS) -> int:
    """Delete what ``queryset`` selects, ``batch`` rows per transaction; returns the count
    of its own model's rows deleted (rows deleted by cascade are not counted)."""
    model = queryset.model
    label = model._meta.label
    deleted = 0
    deadline = time.monotonic() + budget_seconds
    while True:
        with transaction.atomic(using=queryset.db):
            pks = list(
                queryset.order_by()
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch]
            )
            if pks:
                _total, per_model = model.objects.using(queryset.db).filter(pk__in=pks).delete()
                deleted += per_model.get(label, 0)
        if len(pks) < batch or time.monotonic() >= deadline:
            return deleted


def purge_task_results(*, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Delete successful task results older than ``CIVICGRID_TASK_RESULTS_KEEP_DAYS`` and
    failed ones older than ``CIVICGRID_TASK_FAILURES_KEEP_DAYS`` (by ``finished_at``).
    Queued and running tasks are never touched."""
    now = now or timezone.now()
    keep_ok = timedelta(days=float(settings.CIVICGRID_TASK_RESULTS_KEEP_DAYS))
    keep_failed = timedelta(days=float(settings.CIVICGRID_TASK_FAILURES_KEEP_DAYS))
    return {
        "successful": purge(
            DBTaskResult.objects.filter(status="SUCCESSFUL", finished_at__lt=now - keep_ok),
            batch=batch,
        ),
        "failed": purge(
            DBTaskResult.objects.filter(status="FAILED", finished_at__lt=now - keep_failed),
            batch=batch,
        ),
    }

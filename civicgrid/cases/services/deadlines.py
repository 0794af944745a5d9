"""The deadline sweep: marks late stages overdue, once each, from any worker."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from civicgrid.cases.models import Action, Case, Deadline
from civicgrid.cases.services.engine import record_event
from civicgrid.stats import rollups

logger = logging.getLogger("civicgrid.cases")


def mark_overdue(*, now: datetime, batch: int = 500) -> int:
    """Mark every running, unpaused stage whose deadline passed before ``now``.

    Each deadline is claimed with a conditional update, so several workers
    sweeping at once, or a sweep run twice, mark each one exactly once.
    Returns how many this call marked.
    """
    marked = 0
    while True:
        due = list(
            Deadline.objects.filter(
                finished_at__isnull=True,
                overdue_at__isnull=True,
                paused_at__isnull=True,
                due_at__lt=now,
            )
            .order_by("due_at")
            .values_list("pk", "case_id", "stage", "due_at")[:batch]
        )
        if not due:
            return marked
        for pk, case_id, stage, due_at in due:
            with transaction.atomic():
                claimed = Deadline.objects.filter(
                    pk=pk, overdue_at__isnull=True, finished_at__isnull=True
                ).update(overdue_at=now)
                if not claimed:
                    continue
                Case.objects.filter(pk=case_id).update(is_overdue=True)
                record_event(
                    Case(pk=case_id),
                    action=Action.OVERDUE,
                    actor=None,
                    role="",
                    at=now,
                    payload={"stage": stage, "due_at": due_at.isoformat()},
                )
                rollups.record_overdue(case_id)
                marked += 1
        if len(due) < batch:
            return marked

"""Background work of the cases app, run by ``civicgrid worker``."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from civicgrid.cases import services


@task()
def sweep_deadlines() -> int:
    """Mark the stages whose deadline passed as overdue; returns how many."""
    return services.mark_overdue(now=timezone.now())

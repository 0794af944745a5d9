"""Background work of the platform itself, run by ``civicgrid worker``."""

from __future__ import annotations

from django_tasks import task

from civicgrid.core import retention


@task()
def purge_task_results() -> dict[str, int]:
    """Delete old finished task results in small batches (periodic; safe to run twice
    and in several workers at once: a deleted row is simply not found again)."""
    return retention.purge_task_results()

"""The reaper: tasks left running by a worker that is gone are queued again.

django-tasks-db claims a task by marking it RUNNING and appending the worker's id to
``worker_ids``; a worker killed outright (SIGKILL, the OOM killer, a power cut) never
finishes it, and nothing else would ever run it. Every ``civicgrid worker`` therefore
looks, every ``CIVICGRID_TASK_REAP_SECONDS``, for tasks that are

* RUNNING, claimed more than ``CIVICGRID_TASK_LEASE_SECONDS`` ago, and
* whose claiming worker (the last of ``worker_ids``) has no heartbeat newer than the
  lease, or whose heartbeat belongs to a later process of the same id (it restarted).

A live worker beats from a thread of its own while its task runs, so however long a
task takes, it is never taken from a live worker. An orphaned task is put back to
READY (it keeps its place in the queue), or, once it has been claimed
``CIVICGRID_TASK_MAX_ATTEMPTS`` times, marked FAILED with ``WorkerLost`` as its error.

Each change is one conditional UPDATE (``WHERE status = 'RUNNING' AND started_at = …``):
of several workers reaping at once exactly one moves a task, and a task claimed again
meanwhile (a new ``started_at``) is left alone. Tasks are thus run *at least once*:
every task must be safe to run again after a run that was cut off (docs/deployment.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from civicgrid.core.models import WorkerHeartbeat

logger = logging.getLogger("civicgrid.worker")

RUNNING = "RUNNING"
READY = "READY"
FAILED = "FAILED"


class WorkerLost(Exception):
    """The error recorded on a task whose workers kept disappearing while running it."""


WORKER_LOST = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"


@dataclass(frozen=True)
class Orphan:
    pk: str
    task_path: str
    started_at: datetime
    worker_id: str
    attempts: int


def lease() -> timedelta:
    return timedelta(seconds=float(settings.CIVICGRID_TASK_LEASE_SECONDS))


def orphans(*, now: datetime | None = None, limit: int = 100) -> list[Orphan]:
    """Running tasks whose worker is gone (at most ``limit``, oldest claim first)."""
    now = now or timezone.now()
    cutoff = now - lease()
    rows = list(
        DBTaskResult.objects.filter(status=RUNNING, started_at__lt=cutoff)
        .order_by("started_at")
        .values_list("pk", "task_path", "started_at", "worker_ids")[:limit]
    )
    if not rows:
        return []
    claimants = {ids[-1] for _pk, _path, _started, ids in rows if ids}
    # worker id -> when the process now beating under that id started
    alive = dict(
        WorkerHeartbeat.objects.filter(worker_id__in=claimants, last_seen__gte=cutoff).values_list(
            "worker_id", "started_at"
        )
    )
    found = []
    for pk, path, started, ids in rows:
        if started is None:  # not possible with the filter above; for the type checker
            continue
        worker = ids[-1] if ids else ""
        process_started = alive.get(worker)
        if process_started is not None and process_started <= started:
            continue  # the process that claimed it is alive: never take a running task
        found.append(Orphan(str(pk), path, started, worker, len(ids)))
    return found


def settle(orphan: Orphan, *, now: datetime | None = None) -> str:
    """Queue an orphaned task again, or fail it after too many attempts.

    Returns ``"requeued"``, ``"failed"``, or ``""`` when another worker (or a new
    claim) got there first.
    """
    now = now or timezone.now()
    still_orphaned = DBTaskResult.objects.filter(
        pk=orphan.pk, status=RUNNING, started_at=orphan.started_at
    )
    limit = max(1, int(settings.CIVICGRID_TASK_MAX_ATTEMPTS))
    if orphan.attempts >= limit:
        reason = (
            f"WorkerLost: worker {orphan.worker_id!r} was lost (no heartbeat for "
            f"{lease().total_seconds():g} s, or restarted) while running this task; it had been "
            f"claimed {orphan.attempts} time(s), the limit is {limit} "
            "(CIVICGRID_TASK_MAX_ATTEMPTS), so it is not run again.\n"
        )
        moved = still_orphaned.update(
            status=FAILED,
            finished_at=now,
            return_value=None,
            exception_class_path=WORKER_LOST,
            traceback=reason,
        )
        if moved:
            logger.error(
                "task %s (%s) failed: worker %s was lost, attempt %d of %d",
                orphan.pk,
                orphan.task_path,
                orphan.worker_id,
                orphan.attempts,
                limit,
            )
        return "failed" if moved else ""
    moved = still_orphaned.update(status=READY, started_at=None)
    if moved:
        logger.warning(
            "task %s (%s) queued again: worker %s was lost while running it (attempt %d of %d)",
            orphan.pk,
            orphan.task_path,
            orphan.worker_id,
            orphan.attempts,
            limit,
        )
    return "requeued" if moved else ""


def reap(*, now: datetime | None = None) -> dict[str, int]:
    """Settle every orphaned task; returns how many this call re-queued and failed."""
    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0}
    for orphan in orphans(now=now):
        outcome = settle(orphan, now=now)
        if outcome:
            counts[outcome] += 1
    return counts

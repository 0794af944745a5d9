"""Periodic jobs: tasks every worker enqueues on a fixed interval.

Apps register their periodic tasks in ``AppConfig.ready()``; each running
``civicgrid worker`` enqueues them through Django's tasks API when they fall
due, and whichever worker is free runs them. Several workers may enqueue the
same job in the same minute, so periodic tasks must be safe to run twice and
at once (they claim rows with conditional updates).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("civicgrid.periodic")


@dataclass
class PeriodicJob:
    name: str
    every: float
    task: Any  # a django_tasks Task
    next_run: float = field(default=0.0)
    #: When given, the job is only enqueued when this says there is work (a cheap
    #: query), so that a frequent job does not fill the task table with empty runs.
    has_work: Callable[[], bool] | None = None


_registry: dict[str, PeriodicJob] = {}


def register(
    name: str, *, every: float, task: Any, has_work: Callable[[], bool] | None = None
) -> None:
    _registry[name] = PeriodicJob(name=name, every=every, task=task, has_work=has_work)


def jobs() -> list[PeriodicJob]:
    return list(_registry.values())


def enqueue_due(now: float | None = None) -> list[str]:
    """Enqueue every job whose time has come; returns their names."""
    now = time.monotonic() if now is None else now
    started = []
    for job in _registry.values():
        if now < job.next_run:
            continue
        try:
            if job.has_work is not None and not job.has_work():
                job.next_run = now + job.every
                continue
            job.task.enqueue()
        except Exception:
            logger.exception("could not enqueue periodic job %s", job.name)
            continue
        job.next_run = now + job.every
        started.append(job.name)
    return started

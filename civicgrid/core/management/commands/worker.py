"""``civicgrid worker``: runs background tasks from the database queue.

Each worker claims tasks with the database backend's locking (safe with any
number of workers), enqueues the periodic jobs apps register
(``core.periodic``) when they fall due, and writes a heartbeat that
``/healthz`` reports. The heartbeat comes from a thread of its own, so it goes on
while a task runs, however long; from the same thread the worker queues again the
tasks of workers whose heartbeat stopped (``core.reaper``: killed while running one).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from civicgrid.core import periodic, reaper, services

logger = logging.getLogger("civicgrid.worker")


class GracefulWorker(Worker):
    """django-tasks-db's worker, stopped by a signal only between tasks.

    Its own handler exits at once when no task is running — also between claiming a
    task and starting it, which would leave that task claimed and never run. Here the
    first SIGTERM/SIGINT only ends the loop: the task in hand (claimed or running)
    finishes, then the worker stops within one poll interval. A second signal stops
    it at once.
    """

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            super().shutdown(signum, frame)  # the second signal: exit now
            return
        logger.warning("Received %s - stopping after the current task", signal.strsignal(signum))
        self.running = False


class Command(BaseCommand):
    help = "Run the background worker (task queue and heartbeat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", default="default", help="queues to serve, comma-separated")
        parser.add_argument("--interval", type=float, default=1.0, help="poll interval, seconds")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--worker-id", default="", help="unique id (default: random)")

    def handle(self, *args: Any, **options: Any) -> None:
        worker_id = options["worker_id"] or get_random_string(24)
        started_at = timezone.now()
        stop = threading.Event()

        def reap() -> None:
            try:
                reaper.reap()
            except Exception:  # a lost race or a locked SQLite: the next round retries
                logger.exception("looking for tasks of lost workers failed")

        def heartbeat() -> None:
            last_beat = last_reap = time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if now - last_beat >= settings.CIVICGRID_WORKER_HEARTBEAT_SECONDS:
                        services.beat(worker_id=worker_id, started_at=started_at)
                        last_beat = now
                    if now - last_reap >= settings.CIVICGRID_TASK_REAP_SECONDS:
                        reap()
                        last_reap = now
                    if not options["batch"]:
                        periodic.enqueue_due(now)
                except Exception:
                    logger.exception("heartbeat or periodic jobs failed")
                finally:
                    close_old_connections()
                # Wake up often enough for short intervals (the tests use fractions of a second).
                stop.wait(
                    max(
                        0.05,
                        min(
                            1.0,
                            settings.CIVICGRID_WORKER_HEARTBEAT_SECONDS,
                            settings.CIVICGRID_TASK_REAP_SECONDS,
                        ),
                    )
                )
            connection.close()

        services.beat(worker_id=worker_id, started_at=started_at)
        reap()  # at start-up, then every CIVICGRID_TASK_REAP_SECONDS
        thread = threading.Thread(target=heartbeat, name="heartbeat", daemon=True)
        thread.start()
        self.stdout.write(f"civicgrid worker {worker_id} started")
        worker = GracefulWorker(
            queue_names=options["queue"].split(","),
            interval=options["interval"],
            batch=options["batch"],
            backend_name="default",
            startup_delay=not options["batch"],
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        worker.configure_signals()
        try:
            worker.run()
        finally:
            stop.set()
            thread.join(timeout=5)
            try:
                services.stop(worker_id=worker_id)
            except Exception:  # a signal may have cut a query short; the row goes stale
                logger.exception("could not remove the heartbeat of worker %s", worker_id)

"""Several ``civicgrid worker`` processes on one database: every job runs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from civicgrid.core.models import WorkerHeartbeat
from civicgrid.core.tests.tasks_for_tests import mark_slowly

WORKERS = 3
JOBS = 45


def _database_url() -> str:
    """The test database, for processes of their own."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_several_workers_run_every_job_exactly_once(transactional_db: None) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "civicgrid.settings",
    }
    command = str(Path(sys.executable).with_name("civicgrid"))
    workers = [
        subprocess.Popen(
            [command, "worker", "--worker-id", f"w{n}", "--interval", "0.05"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(WORKERS)
    ]
    try:
        # All of them are up (each writes a heartbeat) before any job is queued.
        _wait(
            lambda: (
                WorkerHeartbeat.objects.filter(
                    worker_id__in=[f"w{n}" for n in range(WORKERS)]
                ).count()
                == WORKERS
            ),
            90,
            "the workers to start",
        )
        ids = [str(mark_slowly.enqueue(f"job-{n}", 0.1).id) for n in range(JOBS)]
        _wait(
            lambda: (
                DBTaskResult.objects.filter(id__in=ids, finished_at__isnull=False).count() == JOBS
            ),
            120,
            "the jobs to finish",
        )
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        errors = []
        for process in workers:
            try:
                errors.append(process.communicate(timeout=30)[1].decode(errors="replace")[-2000:])
            except subprocess.TimeoutExpired:
                process.kill()
                errors.append("killed after 30 s")
    results = list(DBTaskResult.objects.filter(id__in=ids))
    assert {r.status for r in results} == {"SUCCESSFUL"}, errors
    # Claimed once each: one worker id per job, and one row per job written.
    assert all(len(r.worker_ids) == 1 for r in results)
    marks = WorkerHeartbeat.objects.filter(worker_id__startswith="job-")
    assert sorted(marks.values_list("worker_id", flat=True)) == sorted(
        f"job-{n}" for n in range(JOBS)
    )
    # They really ran side by side.
    ran_on = {r.worker_ids[0] for r in results}
    assert len(ran_on) >= 2, ran_on
    # Each stopped on SIGTERM by itself, between tasks (and removed its heartbeat).
    assert [p.returncode for p in workers] == [0] * WORKERS, errors
    assert not WorkerHeartbeat.objects.filter(
        worker_id__in=[f"w{n}" for n in range(WORKERS)]
    ).exists()

"""Several ``civicgrid worker`` processes on one database: every job runs exactly once,
and the job of a worker killed outright runs again on another."""

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


def _worker(worker_id: str, **settings: str) -> subprocess.Popen[bytes]:
    """A ``civicgrid worker`` process on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "civicgrid.settings",
        **settings,
    }
    command = str(Path(sys.executable).with_name("civicgrid"))
    return subprocess.Popen(
        [command, "worker", "--worker-id", worker_id, "--interval", "0.05"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _ended(process: subprocess.Popen[bytes]) -> str:
    """Wait for a stopped worker; what it wrote to stderr (the end of it)."""
    try:
        return process.communicate(timeout=30)[1].decode(errors="replace")[-2000:]
    except subprocess.TimeoutExpired:
        process.kill()
        return "killed after 30 s"


def _started(*worker_ids: str) -> bool:
    return WorkerHeartbeat.objects.filter(worker_id__in=worker_ids).count() == len(worker_ids)


@pytest.mark.django_db(transaction=True)
def test_several_workers_run_every_job_exactly_once(transactional_db: None) -> None:
    workers = [_worker(f"w{n}") for n in range(WORKERS)]
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
        errors = [_ended(process) for process in workers]
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


#: Small enough for a test of seconds: a worker silent for 2 s is gone.
QUICK_LEASE = {
    "CIVICGRID_TASK_LEASE_SECONDS": "2",
    "CIVICGRID_WORKER_HEARTBEAT_SECONDS": "0.3",
    "CIVICGRID_TASK_REAP_SECONDS": "0.3",
}
SLOW = 4.0  # seconds: longer than the lease


@pytest.mark.django_db(transaction=True)
def test_the_job_of_a_killed_worker_runs_again_on_another_exactly_once(
    transactional_db: None,
) -> None:
    doomed = _worker("doomed", **QUICK_LEASE)
    survivor: subprocess.Popen[bytes] | None = None
    errors = ""
    try:
        _wait(lambda: _started("doomed"), 90, "the first worker to start")
        before = [str(mark_slowly.enqueue(f"before-{n}", 0).id) for n in range(5)]
        _wait(
            lambda: DBTaskResult.objects.filter(id__in=before, status="SUCCESSFUL").count() == 5,
            60,
            "the first jobs to finish",
        )
        slow = str(mark_slowly.enqueue("slow", SLOW).id)
        _wait(
            lambda: DBTaskResult.objects.filter(id=slow, status="RUNNING").exists(),
            60,
            "the slow job to be claimed",
        )
        doomed.kill()  # SIGKILL in the middle of the slow job: no clean-up at all
        doomed.wait(timeout=30)
        row = DBTaskResult.objects.get(id=slow)
        assert (row.status, row.worker_ids) == ("RUNNING", ["doomed"])

        survivor = _worker("survivor", **QUICK_LEASE)
        after = [str(mark_slowly.enqueue(f"after-{n}", 0).id) for n in range(5)]
        _wait(
            lambda: DBTaskResult.objects.get(id=slow).worker_ids == ["doomed", "survivor"],
            90,
            "the lost job to be taken by the second worker",
        )
        # It runs longer than the lease on a live worker: its heartbeat goes on meanwhile,
        # and nobody takes the job from it.
        first_beat = WorkerHeartbeat.objects.get(worker_id="survivor").last_seen
        seen = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = DBTaskResult.objects.get(id=slow)
            seen.add((row.status, tuple(row.worker_ids)))
            if row.status != "RUNNING":
                break
            time.sleep(0.1)
        assert seen <= {
            ("RUNNING", ("doomed", "survivor")),
            ("SUCCESSFUL", ("doomed", "survivor")),
        }, seen
        assert WorkerHeartbeat.objects.get(worker_id="survivor").last_seen > first_beat
        _wait(
            lambda: DBTaskResult.objects.filter(id__in=after, status="SUCCESSFUL").count() == 5,
            60,
            "the later jobs to finish",
        )
    finally:
        if doomed.poll() is None:
            doomed.kill()
        if survivor is not None:
            survivor.send_signal(signal.SIGTERM)
            errors = _ended(survivor)
    assert survivor.returncode == 0, errors
    row = DBTaskResult.objects.get(id=slow)
    assert row.status == "SUCCESSFUL", errors
    assert row.worker_ids == ["doomed", "survivor"]
    # It ran to the end once: the killed run never got to leave its mark.
    assert WorkerHeartbeat.objects.filter(worker_id="slow").count() == 1
    # Nothing else ran twice: every other job (the periodic ones too) was claimed once.
    others = DBTaskResult.objects.exclude(id=slow)
    assert all(len(r.worker_ids) <= 1 for r in others), [r.worker_ids for r in others]
    assert set(others.filter(id__in=before + after).values_list("status", flat=True)) == {
        "SUCCESSFUL"
    }
    marks = WorkerHeartbeat.objects.filter(worker_id__regex=r"^(before|after)-")
    assert sorted(marks.values_list("worker_id", flat=True)) == sorted(
        [f"before-{n}" for n in range(5)] + [f"after-{n}" for n in range(5)]
    )

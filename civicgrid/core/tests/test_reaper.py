"""The reaper: a task left running by a worker that is gone is queued again (or failed);
a task of a live worker never is, however long it runs."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from django_tasks_db.compat import Task
from django_tasks_db.models import DBTaskResult
from pytest_django.fixtures import Settings

from civicgrid.core import reaper
from civicgrid.core.models import WorkerHeartbeat
from civicgrid.core.tests.tasks_for_tests import leave_a_mark

pytestmark = pytest.mark.django_db

LEASE = 300.0


@pytest.fixture(autouse=True)
def _lease(settings: Settings) -> None:
    settings.CIVICGRID_TASK_LEASE_SECONDS = LEASE
    settings.CIVICGRID_TASK_MAX_ATTEMPTS = 3


def _running(worker: str, *, claimed_ago: float, attempts: int = 1) -> str:
    """A task claimed by ``worker`` ``claimed_ago`` seconds ago (its ``attempts``-th claim)."""
    result = leave_a_mark.enqueue(f"mark-{worker}")
    earlier = [f"earlier-{n}" for n in range(attempts - 1)]
    DBTaskResult.objects.filter(pk=result.id).update(
        status="RUNNING",
        started_at=timezone.now() - timedelta(seconds=claimed_ago),
        worker_ids=[*earlier, worker],
    )
    return str(result.id)


def _beat(worker: str, *, last_seen_ago: float, started_ago: float = 10 * 86400.0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=worker,
        started_at=now - timedelta(seconds=started_ago),
        last_seen=now - timedelta(seconds=last_seen_ago),
    )


def _status(pk: str) -> str:
    return DBTaskResult.objects.get(pk=pk).status


def test_a_long_task_of_a_live_worker_is_never_reaped() -> None:
    _beat("alive", last_seen_ago=5)
    pk = _running("alive", claimed_ago=3 * 86400)  # running for three days
    assert reaper.orphans() == []
    assert reaper.reap() == {"requeued": 0, "failed": 0}
    row = DBTaskResult.objects.get(pk=pk)
    assert row.status == "RUNNING"
    assert row.worker_ids == ["alive"]


def test_a_task_whose_worker_stopped_beating_is_queued_again_once() -> None:
    _beat("killed", last_seen_ago=LEASE + 60)
    pk = _running("killed", claimed_ago=LEASE + 90)
    assert reaper.reap() == {"requeued": 1, "failed": 0}
    row = DBTaskResult.objects.get(pk=pk)
    assert row.status == "READY"
    assert row.started_at is None
    assert row.worker_ids == ["killed"]  # the history stays: one claim so far
    # It is in the queue again, where a worker finds it.
    assert DBTaskResult.objects.ready().filter(pk=pk).exists()
    # Once: a second look finds nothing.
    assert reaper.reap() == {"requeued": 0, "failed": 0}


def test_a_task_is_left_alone_until_the_lease_has_run_out() -> None:
    # The worker is gone (no heartbeat row at all), but the claim is recent.
    pk = _running("gone", claimed_ago=LEASE - 30)
    assert reaper.reap() == {"requeued": 0, "failed": 0}
    assert _status(pk) == "RUNNING"
    # Its heartbeat is stale but younger than the lease: not yet either.
    _beat("stale", last_seen_ago=LEASE - 30)
    pk = _running("stale", claimed_ago=LEASE + 30)
    assert reaper.reap() == {"requeued": 0, "failed": 0}
    assert _status(pk) == "RUNNING"


def test_a_task_of_a_worker_without_any_heartbeat_is_queued_again_after_the_lease() -> None:
    pk = _running("plain-db-worker", claimed_ago=LEASE + 1)
    assert reaper.reap() == {"requeued": 1, "failed": 0}
    assert _status(pk) == "READY"


def test_a_worker_restarted_under_the_same_id_does_not_hide_its_lost_task() -> None:
    # The process that claimed the task was killed; systemd started a new one with the
    # same --worker-id, which beats now but is not running that task.
    _beat("node-1", last_seen_ago=1, started_ago=60)
    pk = _running("node-1", claimed_ago=LEASE + 120)
    assert reaper.reap() == {"requeued": 1, "failed": 0}
    assert _status(pk) == "READY"


def test_after_too_many_lost_attempts_a_task_is_failed_with_the_reason() -> None:
    pk = _running("third-victim", claimed_ago=LEASE + 1, attempts=3)
    assert reaper.reap() == {"requeued": 0, "failed": 1}
    row = DBTaskResult.objects.get(pk=pk)
    assert row.status == "FAILED"
    assert row.finished_at is not None
    assert row.exception_class_path == "civicgrid.core.reaper.WorkerLost"
    assert "third-victim" in row.traceback
    assert "CIVICGRID_TASK_MAX_ATTEMPTS" in row.traceback
    # django-tasks reports it like any failed task.
    [error] = row.task_result.errors
    assert error.exception_class_path == reaper.WORKER_LOST
    # One attempt fewer: queued again.
    other = _running("second-victim", claimed_ago=LEASE + 1, attempts=2)
    assert reaper.reap() == {"requeued": 1, "failed": 0}
    assert _status(other) == "READY"


def test_settling_is_a_compare_and_set() -> None:
    _running("killed", claimed_ago=LEASE + 1)
    [orphan] = reaper.orphans()
    # Two workers saw the same orphan: exactly one moves it.
    assert reaper.settle(orphan) == "requeued"
    assert reaper.settle(orphan) == ""
    # Claimed again between a worker's look and its update: left to the new claim.
    pk = _running("killed-too", claimed_ago=LEASE + 1)
    [orphan] = reaper.orphans()
    DBTaskResult.objects.filter(pk=pk).update(
        started_at=timezone.now(), worker_ids=["killed-too", "new-owner"]
    )
    assert reaper.settle(orphan) == ""
    row = DBTaskResult.objects.get(pk=pk)
    assert (row.status, row.worker_ids) == ("RUNNING", ["killed-too", "new-owner"])


def test_finished_and_queued_tasks_are_not_the_reapers_business() -> None:
    queued = leave_a_mark.enqueue("queued")
    done = leave_a_mark.enqueue("done")
    long_ago = timezone.now() - timedelta(days=30)
    DBTaskResult.objects.filter(pk=done.id).update(
        status="SUCCESSFUL", started_at=long_ago, finished_at=long_ago, worker_ids=["gone"]
    )
    assert reaper.reap() == {"requeued": 0, "failed": 0}
    assert _status(str(queued.id)) == "READY"
    assert _status(str(done.id)) == "SUCCESSFUL"


@pytest.mark.django_db(transaction=True)
def test_many_workers_reaping_at_once_requeue_each_task_once(transactional_db: None) -> None:
    pks = [_running(f"killed-{n}", claimed_ago=LEASE + 1) for n in range(12)]
    start = threading.Barrier(4)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def reap() -> None:
        try:
            start.wait()
            results.append(reaper.reap())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(r["requeued"] for r in results) == len(pks)
    assert set(DBTaskResult.objects.filter(pk__in=pks).values_list("status", flat=True)) == {
        "READY"
    }


def test_every_task_is_listed_with_why_running_it_again_is_safe() -> None:
    """Tasks run at least once (a killed worker's task runs again): docs/deployment.md
    says for each why that is safe. A new task must be added there."""
    docs = (Path(__file__).resolve().parents[3] / "docs" / "deployment.md").read_text("utf-8")
    found = []
    for config in apps.get_app_configs():
        if not config.name.startswith("civicgrid.") or not importlib.util.find_spec(
            f"{config.name}.tasks"
        ):
            continue
        module = importlib.import_module(f"{config.name}.tasks")
        for name, value in vars(module).items():
            if isinstance(value, Task):
                found.append(f"{config.label}.tasks.{name}")
    assert {"cases.tasks.sweep_deadlines", "webhooks.tasks.purge_delivered_webhooks"} <= set(found)
    assert [name for name in found if f"`{name}`" not in docs] == []

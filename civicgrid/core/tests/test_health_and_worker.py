from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from civicgrid.core import services
from civicgrid.core.models import WorkerHeartbeat
from civicgrid.core.tests.tasks_for_tests import leave_a_mark


@pytest.mark.django_db
def test_healthz_reports_database_ok_and_worker_down_without_heartbeat(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["worker"]["status"] == "down"
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_healthz_reports_a_worker_alive_after_a_recent_heartbeat(client: Client) -> None:
    services.beat(worker_id="w1", started_at=timezone.now())
    body = client.get("/healthz").json()
    assert body["worker"] == {
        "status": "ok",
        "alive": 1,
        "last_seen": body["worker"]["last_seen"],
    }
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_healthz_ignores_a_stale_heartbeat(client: Client) -> None:
    old = timezone.now() - timedelta(minutes=10)
    WorkerHeartbeat.objects.create(worker_id="gone", started_at=old, last_seen=old)
    body = client.get("/healthz").json()
    assert body["worker"]["status"] == "down"
    assert body["worker"]["last_seen"] is not None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_runs_queued_tasks_and_cleans_up_its_heartbeat() -> None:
    result = leave_a_mark.enqueue("from-the-queue")
    call_command("worker", "--batch", "--worker-id", "test-worker", "--interval", "0")
    row = DBTaskResult.objects.get(id=result.id)
    assert row.status == "SUCCESSFUL"
    assert row.worker_ids == ["test-worker"]
    assert WorkerHeartbeat.objects.filter(worker_id="from-the-queue").exists()
    # A worker that stops removes its own heartbeat.
    assert not WorkerHeartbeat.objects.filter(worker_id="test-worker").exists()

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Action, Case, CaseEvent, Deadline, Status
from civicgrid.core import periodic


def test_the_sweep_marks_a_late_stage_overdue_exactly_once(
    drive: Callable[[str], Case],
) -> None:
    case = drive(Status.DISPATCHED)
    deadline = case.deadlines.get(finished_at__isnull=True)
    assert services.mark_overdue(now=deadline.due_at - timedelta(minutes=1)) == 0
    later = deadline.due_at + timedelta(minutes=1)
    assert services.mark_overdue(now=later) == 1
    assert services.mark_overdue(now=later + timedelta(hours=1)) == 0
    case.refresh_from_db()
    assert case.is_overdue
    assert case.status == Status.DISPATCHED
    event = case.events.get(action=Action.OVERDUE)
    assert event.payload["stage"] == "acknowledge"
    assert event.actor is None


def test_the_sweep_skips_finished_and_parked_stages(
    drive: Callable[[str], Case], supervisor: User
) -> None:
    closed = drive(Status.CLOSED)
    parked = services.park_case(case=drive(Status.FILED), actor=supervisor, reason="季节性")
    far_future = timezone.now() + timedelta(days=365)
    assert services.mark_overdue(now=far_future) == 0
    assert not Case.objects.filter(pk__in=[closed.pk, parked.pk], is_overdue=True).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_sweeps_mark_each_deadline_once(drive: Callable[[str], Case]) -> None:
    cases = [drive(Status.DISPATCHED) for _ in range(3)]
    later = timezone.now() + timedelta(days=30)
    results: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            results.append(services.mark_overdue(now=later, batch=2))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    if connection.vendor == "sqlite":
        # SQLite serialises writers; the claim logic is the same, run back to back.
        sweep()
        sweep()
    else:
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert sum(results) == 3
    assert CaseEvent.objects.filter(action=Action.OVERDUE).count() == 3
    assert Deadline.objects.filter(case__in=cases, overdue_at__isnull=False).count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_enqueues_and_runs_the_periodic_sweep(drive: Callable[[str], Case]) -> None:
    case = drive(Status.DISPATCHED)
    Deadline.objects.filter(case=case).update(due_at=timezone.now() - timedelta(minutes=5))
    names = periodic.enqueue_due(now=1e12)
    assert "cases.sweep_deadlines" in names
    assert periodic.enqueue_due(now=1e12 + 1) == []  # not again before its interval
    call_command("worker", "--batch", "--worker-id", "sweeper", "--interval", "0")
    task = DBTaskResult.objects.get(task_path="civicgrid.cases.tasks.sweep_deadlines")
    assert task.status == "SUCCESSFUL"
    assert Case.objects.get(pk=case.pk).is_overdue

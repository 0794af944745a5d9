"""The clean-up of finished task results: by age and outcome, in batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from pytest_django.fixtures import Settings

from civicgrid.core import periodic, retention
from civicgrid.core.tests.tasks_for_tests import leave_a_mark

pytestmark = pytest.mark.django_db


def _result(status: str, *, days_ago: float) -> str:
    result = leave_a_mark.enqueue(status)
    at = timezone.now() - timedelta(days=days_ago)
    DBTaskResult.objects.filter(pk=result.id).update(
        status=status,
        started_at=at,
        finished_at=at if status in ("SUCCESSFUL", "FAILED") else None,
        worker_ids=["w"] if status != "READY" else [],
    )
    return str(result.id)


def test_old_results_go_recent_ones_and_unfinished_tasks_stay(settings: Settings) -> None:
    settings.CIVICGRID_TASK_RESULTS_KEEP_DAYS = 7
    settings.CIVICGRID_TASK_FAILURES_KEEP_DAYS = 30
    _result("SUCCESSFUL", days_ago=8)  # goes
    new_ok = _result("SUCCESSFUL", days_ago=6)
    failed_last_week = _result("FAILED", days_ago=8)
    _result("FAILED", days_ago=31)  # goes
    # However old: a queued task is still to run, a running one is the reaper's business.
    queued = _result("READY", days_ago=100)
    running = _result("RUNNING", days_ago=100)
    assert retention.purge_task_results() == {"successful": 1, "failed": 1}
    left = set(DBTaskResult.objects.values_list("pk", flat=True))
    assert {str(pk) for pk in left} == {new_ok, failed_last_week, queued, running}
    assert retention.purge_task_results() == {"successful": 0, "failed": 0}


def test_a_backlog_goes_in_batches(settings: Settings) -> None:
    settings.CIVICGRID_TASK_RESULTS_KEEP_DAYS = 7
    for _ in range(7):
        _result("SUCCESSFUL", days_ago=10)
    kept = _result("SUCCESSFUL", days_ago=1)
    assert retention.purge_task_results(batch=3) == {"successful": 7, "failed": 0}
    assert [str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)] == [kept]


def test_a_run_stops_at_its_time_budget_and_the_next_goes_on() -> None:
    for _ in range(5):
        _result("SUCCESSFUL", days_ago=10)
    queryset = DBTaskResult.objects.filter(status="SUCCESSFUL")
    assert retention.purge(queryset, batch=2, budget_seconds=0) == 2
    assert retention.purge(queryset, batch=2) == 3


def test_the_clean_up_is_a_periodic_job() -> None:
    names = {job.name for job in periodic.jobs()}
    assert {"core.purge_task_results", "webhooks.purge_delivered"} <= names

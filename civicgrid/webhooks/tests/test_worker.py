"""The worker's periodic job: enqueued only when a delivery is due; it sends them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.core import periodic
from civicgrid.webhooks.models import Delivery, DeliveryStatus, Subscription
from civicgrid.webhooks.tasks import deliver_webhooks
from civicgrid.webhooks.tests.conftest import Receiver


@pytest.fixture
def schedule() -> Iterator[None]:
    """Every periodic job due now; the registry's own times restored afterwards."""
    saved = {job.name: job.next_run for job in periodic.jobs()}
    for job in periodic.jobs():
        job.next_run = 0.0
    yield
    for job in periodic.jobs():
        job.next_run = saved[job.name]


def test_the_delivery_job_is_enqueued_only_when_something_is_due(
    schedule: None, subscription: Subscription, new_case: IntakeFactory
) -> None:
    assert "webhooks.deliver" not in periodic.enqueue_due(now=1.0)
    new_case()
    for job in periodic.jobs():
        job.next_run = 0.0
    assert "webhooks.deliver" in periodic.enqueue_due(now=2.0)


def test_the_task_sends_what_is_due(
    subscription: Subscription, receiver: Receiver, new_case: IntakeFactory
) -> None:
    new_case()
    assert deliver_webhooks.call() == {"delivered": 1, "failed": 0}
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(receiver.accepted) == 1

"""The worker's periodic job: enqueued only when a delivery is due; it sends them."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from civicgrid.accounts.models import Integration
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.core import periodic
from civicgrid.grids.tests.fixtures import Tree
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


def test_create_webhook_subscribes_and_prints_the_secret(partner: Integration, tree: Tree) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create-webhook",
        partner.name,
        "https://partner.example/hooks",
        "--event",
        "case.closed",
        "--grid",
        tree.east.code,
        stdout=out,
        stderr=err,
    )
    subscription = Subscription.objects.get()
    assert out.getvalue().strip() == subscription.secret
    assert subscription.secret.startswith("whsec_")
    assert subscription.event_types == ["case.closed"]
    assert subscription.grid == tree.east
    with pytest.raises(CommandError, match="推送地址无效"):
        call_command("create-webhook", partner.name, "ftp://x", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="没有对接系统"):
        call_command("create-webhook", "无此系统", "https://x.example", stdout=out, stderr=err)

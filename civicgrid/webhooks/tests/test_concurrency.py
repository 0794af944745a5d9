"""Several workers at once never send the same delivery twice, nor a case out of order."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.webhooks import delivery
from civicgrid.webhooks.models import Delivery, DeliveryStatus, Subscription
from civicgrid.webhooks.tests.conftest import Receiver


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks (SKIP LOCKED) are PostgreSQL's"
)
def test_two_workers_claiming_at_once_never_both_deliver_an_event(
    transactional_db: None,
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
) -> None:
    made = [new_case(description=f"占道经营 {i}") for i in range(24)]
    assert Delivery.objects.count() == len(made)
    start = threading.Barrier(2)
    results: list[tuple[str, dict[str, int]]] = []
    receiver.delay = 0.02
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait()
            while True:  # small batches, so that the two keep meeting in the queue
                done = delivery.deliver_due(limit=2, worker=name, budget_seconds=0.001)
                results.append((name, done))
                if not done["delivered"] and not done["failed"]:
                    break
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    ids = [r.event_id for r in receiver.requests]
    assert len(ids) == len(made)
    assert len(set(ids)) == len(ids)  # no event sent twice
    assert sum(r["delivered"] for _name, r in results) == len(made)
    assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
    # Both workers took part (else the test proved nothing about concurrency).
    assert {name for name, r in results if r["delivered"]} == {"w0", "w1"}


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks (SKIP LOCKED) are PostgreSQL's"
)
def test_a_claim_skips_rows_another_worker_has_locked(
    transactional_db: None, subscription: Subscription, new_case: IntakeFactory
) -> None:
    new_case()
    new_case(description="另一处")
    first, second = Delivery.objects.order_by("id")
    locked = threading.Event()
    release = threading.Event()
    taken: list[list[int]] = []

    def holder() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().filter(pk=first.pk).get()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=holder)
    t.start()
    assert locked.wait(10)
    try:
        taken.append([d.pk for d in delivery.claim(worker="other")])
    finally:
        release.set()
        t.join(10)
    assert taken == [[second.pk]]  # did not wait for the lock, did not take the row

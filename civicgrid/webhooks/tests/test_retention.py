"""The clean-up of old delivered deliveries: never one that was not delivered."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from pytest_django.fixtures import Settings

from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.webhooks import delivery, retention
from civicgrid.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription
from civicgrid.webhooks.tests.conftest import Receiver


def test_old_delivered_deliveries_go_with_their_attempts_and_nothing_else(
    settings: Settings, subscription: Subscription, receiver: Receiver, new_case: IntakeFactory
) -> None:
    settings.CIVICGRID_WEBHOOKS_KEEP_DAYS = 30
    for _ in range(6):
        new_case()
    assert delivery.deliver_due() == {"delivered": 6, "failed": 0}
    old_ones, recent, *others = list(Delivery.objects.order_by("id"))
    long_ago = timezone.now() - timedelta(days=31)
    # Delivered 31 days ago: goes. Delivered yesterday: stays.
    Delivery.objects.filter(pk=old_ones.pk).update(delivered_at=long_ago)
    Delivery.objects.filter(pk=recent.pk).update(delivered_at=long_ago + timedelta(days=30))
    # Never delivered, however old: pending, failed (it holds its case back), cancelled.
    undelivered = {
        DeliveryStatus.PENDING: others[0],
        DeliveryStatus.FAILED: others[1],
        DeliveryStatus.CANCELLED: others[2],
    }
    for status, row in undelivered.items():
        Delivery.objects.filter(pk=row.pk).update(
            status=status, delivered_at=None, created_at=long_ago, next_attempt_at=long_ago
        )
    also_old = others[3]
    Delivery.objects.filter(pk=also_old.pk).update(delivered_at=long_ago)

    assert retention.purge_delivered(batch=1) == 2
    left = set(Delivery.objects.values_list("pk", flat=True))
    assert left == {recent.pk} | {row.pk for row in undelivered.values()}
    assert not Attempt.objects.filter(delivery_id__in=[old_ones.pk, also_old.pk]).exists()
    assert Attempt.objects.filter(delivery_id=recent.pk).count() == 1
    assert retention.purge_delivered() == 0

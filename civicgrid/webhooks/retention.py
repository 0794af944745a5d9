"""Deleting delivered webhook deliveries once they are old (their attempts go with them).

Only a delivery that reached its receiver is ever deleted: pending ones are still to be
sent, and failed ones hold back the later events of their case (``BLOCKING``) until an
administrator replays or cancels them; cancelled ones stay as the record of why an
event was never sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from civicgrid.core.retention import BATCH, purge
from civicgrid.webhooks.models import Delivery, DeliveryStatus


def purge_delivered(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete deliveries delivered more than ``CIVICGRID_WEBHOOKS_KEEP_DAYS`` ago, in
    batches; returns how many."""
    now = now or timezone.now()
    keep = timedelta(days=float(settings.CIVICGRID_WEBHOOKS_KEEP_DAYS))
    return purge(
        Delivery.objects.filter(status=DeliveryStatus.DELIVERED, delivered_at__lt=now - keep),
        batch=batch,
    )

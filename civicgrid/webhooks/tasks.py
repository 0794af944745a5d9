"""Background work of the webhooks app, run by ``civicgrid worker``."""

from __future__ import annotations

from django_tasks import task

from civicgrid.webhooks import delivery, retention


@task()
def deliver_webhooks() -> dict[str, int]:
    """Send the due webhook deliveries (periodic; safe to run in several workers)."""
    return delivery.deliver_due()


@task()
def purge_delivered_webhooks() -> int:
    """Delete old delivered deliveries in small batches (periodic; safe to run twice)."""
    return retention.purge_delivered()

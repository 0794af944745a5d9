"""Background work of the webhooks app, run by ``civicgrid worker``."""

from __future__ import annotations

from django_tasks import task

from civicgrid.webhooks import delivery


@task()
def deliver_webhooks() -> dict[str, int]:
    """Send the due webhook deliveries (periodic; safe to run in several workers)."""
    return delivery.deliver_due()

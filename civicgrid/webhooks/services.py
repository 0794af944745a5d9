"""Writes to webhooks: subscriptions, and an administrator's retry, replay and cancel."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Integration
from civicgrid.grids.models import Grid
from civicgrid.webhooks import outbox
from civicgrid.webhooks.delivery import new_secret
from civicgrid.webhooks.models import Delivery, DeliveryStatus, EventType, Subscription


class WebhookError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check(target_url: str, event_types: list[str]) -> None:
    try:
        URLValidator(schemes=["http", "https"])(target_url)
    except ValidationError as exc:
        raise WebhookError(_("推送地址无效：%(u)s") % {"u": target_url}) from exc
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise WebhookError(_("未知的事件类型：%(t)s") % {"t": ", ".join(unknown)})


@transaction.atomic
def create_subscription(
    *,
    integration: Integration,
    target_url: str,
    event_types: list[str] | None = None,
    grid: Grid | None = None,
    name: str = "",
) -> Subscription:
    """A new active subscription with a new secret (``subscription.secret``)."""
    event_types = sorted(set(event_types or []))
    _check(target_url, event_types)
    if not integration.is_usable:
        raise WebhookError(_("对接系统“%(n)s”已停用或吊销") % {"n": integration.name})
    subscription = Subscription.objects.create(
        integration=integration,
        name=name,
        target_url=target_url,
        secret=new_secret(),
        event_types=event_types,
        grid=grid,
    )
    transaction.on_commit(outbox.invalidate)
    outbox.invalidate()
    return subscription


def set_subscription_active(*, subscription: Subscription, active: bool) -> Subscription:
    Subscription.objects.filter(pk=subscription.pk).update(is_active=active)
    subscription.is_active = active
    outbox.invalidate()
    return subscription


def rotate_secret(*, subscription: Subscription) -> str:
    """A new secret; deliveries sent from now on are signed with it."""
    subscription.secret = new_secret()
    Subscription.objects.filter(pk=subscription.pk).update(secret=subscription.secret)
    return subscription.secret


def retry(*, deliveries: Iterable[Delivery]) -> int:
    """Send failed (or waiting) deliveries again now, with a fresh retry schedule."""
    ids = [d.pk for d in deliveries]
    return Delivery.objects.filter(
        pk__in=ids, status__in=[DeliveryStatus.FAILED, DeliveryStatus.PENDING]
    ).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
        attempts=0,
        first_attempt_at=None,
        claimed_until=None,
        claimed_by="",
    )


def cancel(*, deliveries: Iterable[Delivery]) -> int:
    """Give up on deliveries, which lets the later events of their cases go."""
    ids = [d.pk for d in deliveries]
    return Delivery.objects.filter(
        pk__in=ids, status__in=[DeliveryStatus.FAILED, DeliveryStatus.PENDING]
    ).update(status=DeliveryStatus.CANCELLED, claimed_until=None, claimed_by="")


@transaction.atomic
def replay(*, deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Queue delivered (or cancelled) events again: same event id, same body.

    A replay takes its place in its case's line like a new event.
    """
    now = timezone.now()
    copies = [
        Delivery(
            subscription_id=d.subscription_id,
            case_id=d.case_id,
            case_event_id=d.case_event_id,
            event_id=d.event_id,
            event_type=d.event_type,
            occurred_at=d.occurred_at,
            snapshot=d.snapshot,
            body=d.body,
            next_attempt_at=now,
            created_at=now,
        )
        for d in deliveries
        if d.status in (DeliveryStatus.DELIVERED, DeliveryStatus.CANCELLED)
    ]
    return Delivery.objects.bulk_create(copies)

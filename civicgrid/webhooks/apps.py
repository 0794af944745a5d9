from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "civicgrid.webhooks"
    label = "webhooks"
    verbose_name = _("事件推送")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from civicgrid.core import periodic
        from civicgrid.webhooks.delivery import anything_due
        from civicgrid.webhooks.tasks import deliver_webhooks, purge_delivered_webhooks

        periodic.register(
            "webhooks.deliver",
            every=settings.CIVICGRID_WEBHOOKS_POLL_SECONDS,
            task=deliver_webhooks,
            has_work=anything_due,
        )
        periodic.register(
            "webhooks.purge_delivered",
            every=settings.CIVICGRID_CLEANUP_SECONDS,
            task=purge_delivered_webhooks,
        )

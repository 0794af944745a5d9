from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "civicgrid.core"
    label = "core"
    verbose_name = _("平台运行")

    def ready(self) -> None:
        from civicgrid.core import periodic
        from civicgrid.core.tasks import purge_task_results

        periodic.register(
            "core.purge_task_results",
            every=settings.CIVICGRID_CLEANUP_SECONDS,
            task=purge_task_results,
        )

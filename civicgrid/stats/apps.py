from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StatsConfig(AppConfig):
    name = "civicgrid.stats"
    label = "stats"
    verbose_name = _("统计与考评")

    def ready(self) -> None:
        from civicgrid.core import periodic
        from civicgrid.stats import conf
        from civicgrid.stats.tasks import rebuild_recent_rollups

        every = float(conf.get("rebuild_every_seconds"))
        periodic.register("stats.rebuild_recent_rollups", every=every, task=rebuild_recent_rollups)

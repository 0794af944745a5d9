from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "civicgrid.cases"
    label = "cases"
    verbose_name = _("案件")

    def ready(self) -> None:
        from civicgrid.cases.checks import register_checks
        from civicgrid.cases.tasks import sweep_deadlines
        from civicgrid.core import periodic

        register_checks()
        periodic.register("cases.sweep_deadlines", every=60.0, task=sweep_deadlines)

"""Background work of the stats app, run by ``civicgrid worker``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from civicgrid.stats import conf
from civicgrid.stats.rollups import rebuild_rollups


@task()
def rebuild_recent_rollups() -> int:
    """Rebuild the rollups of the last ``rebuild_days`` days (today included) from the
    facts: repairs any drift; safe to run at any time and twice at once. Returns the
    rollup rows written."""
    today = timezone.localdate()
    days = max(1, int(conf.get("rebuild_days")))
    result = rebuild_rollups(today - timedelta(days=days - 1), today)
    return result.rollup_rows + result.grid_rows + result.dim_rows + result.person_rows

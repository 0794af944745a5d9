"""``/stats/``: the leader dashboard, the big screen, their JSON and their downloads
(views in ``civicgrid/web/views/stats.py``; ``docs/pages.md``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from civicgrid.web.views import stats

urlpatterns: list[URLPattern | URLResolver] = [
    path("", stats.stats_dashboard, name="stats-dashboard"),
    path("screen/", stats.stats_screen, name="stats-screen"),
    path("data/", stats.stats_data, name="stats-data"),
    path("geo/", stats.stats_geo, name="stats-geo"),
    path("heat/", stats.stats_heat, name="stats-heat"),
    path("export/<slug:table>.<slug:fmt>", stats.stats_export, name="stats-export"),
    path("report/<slug:kind>.xlsx", stats.stats_report, name="stats-report"),
]

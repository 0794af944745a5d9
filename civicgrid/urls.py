from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from civicgrid.api.urls import api
from civicgrid.core.views import healthz

admin.site.site_header = _("civicgrid 网格化社会治理平台")
admin.site.site_title = _("civicgrid 管理")
admin.site.index_title = _("系统管理")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("open311/v2/", include("civicgrid.open311.urls")),
    path("stats/", include("civicgrid.stats.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("civicgrid.web.urls")),
]

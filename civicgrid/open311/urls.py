"""``/open311/v2/``: GeoReport v2, the format a suffix of every resource."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from civicgrid.open311 import views
from civicgrid.open311.gateway import not_found

app_name = "open311"

FMT = r"\.(?P<fmt>[A-Za-z0-9]+)$"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^discovery" + FMT, views.discovery, name="discovery"),
    re_path(r"^services" + FMT, views.service_list, name="services"),
    re_path(r"^services/(?P<code>[^/]+?)" + FMT, views.service_definition, name="service"),
    re_path(r"^requests" + FMT, views.requests, name="requests"),
    re_path(r"^requests/(?P<number>[^/]+?)" + FMT, views.request_detail, name="request"),
    re_path(r"^tokens/(?P<token>[^/]+?)" + FMT, views.token, name="token"),
    re_path(r"^servicerequestupdates" + FMT, views.request_updates, name="updates"),
    # Anything else under the endpoint: 404 with the Open311 error body.
    re_path(r"^(?P<path>.*)$", not_found),
]

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from civicgrid.cases.access import is_staff
from civicgrid.web.nav import nav_for_request


def platform(request: HttpRequest) -> dict[str, Any]:
    return {
        "BASEMAP_URL": settings.CIVICGRID_BASEMAP_URL,
        "BASEMAP_LABELS_URL": settings.CIVICGRID_BASEMAP_LABELS_URL,
        "BASEMAP_ATTRIBUTION": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        # Called by the template only where the top bar is drawn (no query otherwise).
        "nav_links": lambda: nav_for_request(request),
        "works_on_cases": lambda: is_staff(request.user),  # type: ignore[arg-type]
    }

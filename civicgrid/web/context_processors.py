from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict[str, Any]:
    return {
        "BASEMAP_URL": settings.CIVICGRID_BASEMAP_URL,
        "BASEMAP_LABELS_URL": settings.CIVICGRID_BASEMAP_LABELS_URL,
        "BASEMAP_ATTRIBUTION": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
    }

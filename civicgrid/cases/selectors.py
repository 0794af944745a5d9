"""Reads about cases that more than one interface needs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings

from civicgrid.cases.models import Case, Category, Status
from civicgrid.grids import crs

#: Metres per degree of latitude, near enough for a bounding-box prefilter.
M_PER_DEG = 111_320.0


def possible_duplicates(
    *,
    category: Category,
    lon: float | None,
    lat: float | None,
    at: datetime,
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[tuple[Case, float]]:
    """Cases of the same category near the point and close in time, nearest first.

    Distance and time window are ``CIVICGRID_DUPLICATE_METERS`` and
    ``CIVICGRID_DUPLICATE_HOURS``. Returns (case, distance in metres) pairs.
    """
    if lon is None or lat is None:
        return []
    meters = settings.CIVICGRID_DUPLICATE_METERS
    hours = settings.CIVICGRID_DUPLICATE_HOURS
    dlat = meters / M_PER_DEG
    dlon = meters / (M_PER_DEG * max(math.cos(math.radians(lat)), 0.01))
    candidates = (
        Case.objects.filter(
            category=category,
            lon__range=(lon - dlon, lon + dlon),
            lat__range=(lat - dlat, lat + dlat),
            received_at__range=(at - timedelta(hours=hours), at + timedelta(hours=hours)),
        )
        .exclude(status__in=[Status.MERGED, Status.VOIDED, Status.REJECTED])
        .select_related("category", "grid")
        .order_by("-received_at")[: limit * 5]
    )
    found: list[tuple[Case, float]] = []
    for case in candidates:
        if case.pk == exclude_id or case.lon is None or case.lat is None:
            continue
        distance = crs.distance_m(lon, lat, case.lon, case.lat)
        if distance <= meters:
            found.append((case, distance))
    found.sort(key=lambda pair: pair[1])
    return found[:limit]

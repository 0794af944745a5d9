"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from civicgrid.cases import workcalendar
from civicgrid.grids import locator

#: The small hand-built grid tree, its personas and cases on it, for every app's tests.
pytest_plugins = [
    "civicgrid.grids.tests.fixtures",
    "civicgrid.cases.tests.fixtures",
]


@pytest.fixture(autouse=True)
def _fresh_process_caches(settings: Settings) -> Iterator[None]:
    """Each test sees the grid tree and the calendar of its own database state,
    and pages render without a collected static manifest."""
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 0
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 0
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    locator.invalidate()
    workcalendar.invalidate()
    yield
    locator.invalidate()
    workcalendar.invalidate()

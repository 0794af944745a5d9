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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that commit (threads, a live server) leave the database as they found it.

    A transactional test empties the tables when it ends, taking the data
    migrations' rows (work calendar, categories) with it; a plain flush also
    re-creates content types, which a later serialized restore collides with.
    So every transactional test runs with serialized rollback (it restores the
    migrations' rows before it starts) — except browser tests: Playwright's event
    loop hides the serialized contents from them, so they run with
    ``available_apps``, whose flush never re-creates content types.
    """
    from django.conf import settings

    for item in items:
        names = getattr(item, "fixturenames", ())
        live = "live_server" in names
        marker = item.get_closest_marker("django_db")
        committing = marker is not None and marker.kwargs.get("transaction")
        if not live and "transactional_db" not in names and not committing:
            continue
        kwargs = dict(marker.kwargs) if marker else {}
        kwargs["transaction"] = True
        if live and item.get_closest_marker("browser"):
            kwargs.setdefault("available_apps", list(settings.INSTALLED_APPS))
            kwargs.pop("serialized_rollback", None)
        else:
            kwargs["serialized_rollback"] = True
        item.add_marker(pytest.mark.django_db(**kwargs), append=False)


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

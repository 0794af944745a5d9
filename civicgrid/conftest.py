"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from civicgrid.grids import locator


@pytest.fixture(autouse=True)
def _fresh_locator(settings: Settings) -> Iterator[None]:
    """Each test sees the grid tree of its own database state."""
    settings.CIVICGRID_LOCATOR_RECHECK_SECONDS = 0
    locator.invalidate()
    yield
    locator.invalidate()

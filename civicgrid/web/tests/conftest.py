"""Page tests use the shared tree and personas (civicgrid/grids/tests/fixtures.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from pytest_django import Settings

from civicgrid.accounts.models import User

PASSWORD = "Wangge-2025-secret"

# Browser assertions wait this long (ms) before failing: the suite runs on two
# busy cores, where Playwright's 5-second default is sometimes not enough.
expect.set_options(timeout=20_000)


@pytest.fixture(autouse=True)
def _plain_static(settings: Settings) -> None:
    """``{% static %}`` without a collected manifest: the plain storage."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def with_password(user: User) -> User:
    """``user``, able to sign in through the login form with ``PASSWORD``."""
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user

"""Page tests use the shared tree and personas (civicgrid/grids/tests/fixtures.py).

Browser tests (``pytest.mark.browser``) share one Chromium per test process: the
session-scoped ``browser`` fixture launches Debian's Chromium once (under
pytest-xdist, once per worker, each worker being its own process) and every test
opens its own fresh profiles (``BrowserContext``) on it, closed when the test ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from pytest_django import Settings

from civicgrid.accounts.models import User

PASSWORD = "Wangge-2025-secret"

CHROMIUM = os.environ.get("CIVICGRID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where browser tests save their screenshots.
ARTIFACTS = Path(
    os.environ.get("CIVICGRID_ARTIFACTS", str(Path(django_settings.BASE_DIR) / "var" / "artifacts"))
)
#: Browser actions and assertions wait this long (ms) before failing: the suite runs
#: on two busy cores, where Playwright's 5-second default is sometimes not enough.
TIMEOUT_MS = 20_000

expect.set_options(timeout=TIMEOUT_MS)


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


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for every browser test of this process (an xdist worker
    is a process of its own, so each worker has its own)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        # Playwright's sync API keeps an event loop running in this thread until the
        # session ends, which Django takes for async code; the ORM calls of the tests
        # (and of their database fixtures) are synchronous.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def desk(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles at an office screen's 1366×768 that ask for Chinese."""
    opened: list[BrowserContext] = []

    def new() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    yield new
    for context in opened:
        context.close()


def sign_in(page: Page, base: str, username: str, path: str) -> None:
    """Open ``path``, get sent to the login page, sign in there, land on ``path``."""
    page.goto(f"{base}{path}")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}{path}")

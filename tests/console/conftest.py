"""Browser fixtures: pytest-playwright's ``page`` in Debian's chromium (Playwright's own
browser download is not reachable here), against pytest-django's live server.

pytest-playwright keeps Playwright (and with it an event loop marked running in the main
thread) for the whole session, which breaks every later test that runs an event loop of
its own. Its session fixtures are therefore overridden here with package scope: Playwright
starts with the first browser test of this package and stops after its last.

Playwright's sync API runs an event loop in the test's thread, which makes Django refuse
ORM calls from it ("async context"); the test code itself is synchronous, so that check
is switched off for these tests (and only these).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Playwright, sync_playwright

CHROMIUM = os.environ.get("AURA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"No chromium at {CHROMIUM}: install Debian's (apt-get install chromium, as "
            ".ci/run does) or point AURA_CHROMIUM at one."
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    browser_type: BrowserType = getattr(playwright, browser_name)
    return browser_type


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="package", autouse=True)
def _sync_test_code_under_playwright() -> Iterator[None]:
    # Only for this package's tests: elsewhere Django's check guards the async gateway.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def signed_in(live_server: Any, page: Any) -> Iterator[Any]:
    """A function that signs ``username`` in through the real form and returns the page."""

    def sign_in(username: str, password: str | None = None) -> Any:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password or f"pw-{username}")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield sign_in

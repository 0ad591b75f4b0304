"""Fixtures for the real-browser tests: Debian's Chromium driven by Playwright (no browser download; never
``playwright install``). Chromium missing is a broken setup, so the tests fail (never skip), like a missing engine or
model. Test modules load this file with ``pytest_plugins = ["browser_fixtures"]`` and never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from browser_kit import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, WatchedPage, watch
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from conftest import LlmhostServer


# Module scope, not session: the sync driver runs an event loop in this thread while it is open, and every
# asyncio test after it would find that loop running.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium", pytrace=False)
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[LlmhostServer], WatchedPage]]:
    """A factory for watched pages in fresh browser contexts (no shared localStorage); closed at teardown."""
    contexts: list[BrowserContext] = []

    def make(server: LlmhostServer) -> WatchedPage:
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        contexts.append(context)
        return watch(context.new_page(), server.base_url)

    yield make
    for context in contexts:
        context.close()

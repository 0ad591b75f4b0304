"""Helpers for the real-browser tests: pages watched for console errors, uncaught exceptions and failed or erroring
requests; screenshots saved for a human to look at; a module's own llmhost; admin calls to check what a page claims.

The fixtures live in browser_fixtures.py, loaded by each test module with ``pytest_plugins``. Neither is a
``conftest.py``: a second module named ``conftest`` would shadow tests/conftest.py for every later
``from conftest import ...`` in the whole suite.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Response

from conftest import DEFAULT_MODEL, LlmhostServer, model_file, shutdown_and_check, start_server

CHROMIUM = Path(os.environ.get("LLMHOST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("LLMHOST_SHOTS", "/tmp/shots"))
VIEWPORT = {"width": 1400, "height": 1000}
PAGES = ["", "gpus", "models", "engines", "apis", "config", "optimize", "benchmarks", "tuning"]
SECOND = "second-smol"  # the default model's file under a second name: two models without a second download


def two_models() -> dict[str, Any]:
    """Profiles for the default model and a second name for the same file (one thread each: fast on CI)."""
    return {
        DEFAULT_MODEL: {"parallel": 2, "ctx": 2048, "threads": 1},
        SECOND: {"path": str(model_file()), "parallel": 1, "ctx": 512, "threads": 1},
    }


@contextlib.contextmanager
def serving(directory: Path, **extra: Any) -> Iterator[LlmhostServer]:
    """A real ``llmhost serve`` for one test module, checked for leftover engines when it stops."""
    running = start_server(directory, **extra)
    try:
        yield running
    finally:
        shutdown_and_check(running)


@dataclass
class WatchedPage:
    """A page plus everything that went wrong on it: console errors, uncaught exceptions, failed requests and
    responses with an error status."""

    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)
    navigating: bool = False

    def open(self, slug: str) -> Page:
        self.navigating = True  # leaving a page aborts its endless SSE stream: that is no failure
        try:
            self.page.goto(f"{self.base_url}/ui/{slug}")
        finally:
            self.navigating = False
        self.wait_live()
        return self.page

    def enter_key(self, key: str) -> None:
        """Type a key into the nav's key field; the page reloads with it (aborting its stream: no failure)."""
        self.navigating = True
        try:
            with self.page.expect_navigation():
                self.page.fill("#admin-key", key)
                self.page.press("#admin-key", "Enter")
        finally:
            self.navigating = False
        self.wait_live()

    def wait_live(self, timeout: float = 10_000) -> None:
        """Until the first SSE snapshot arrived (the live dot turns on)."""
        self.page.wait_for_selector("#live.on", timeout=timeout)

    def problems_except(self, *allowed: str) -> list[str]:
        return [problem for problem in self.problems if not any(text in problem for text in allowed)]

    def assert_clean(self, *allowed: str) -> None:
        problems = self.problems_except(*allowed)
        assert not problems, "the page had errors:\n" + "\n".join(problems)

    def screenshot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def watch(page: Page, base_url: str) -> WatchedPage:
    watched = WatchedPage(page, base_url)

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            watched.problems.append(f"console {message.type}: {message.text}")

    def failed(request: Request) -> None:
        if watched.navigating and request.failure == "net::ERR_ABORTED":
            return
        watched.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def response(resp: Response) -> None:
        if resp.status >= 400:
            watched.problems.append(f"HTTP {resp.status}: {resp.request.method} {resp.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    page.on("requestfailed", failed)
    page.on("response", response)
    return watched


# --- talking to the service directly, to check what the page claims ----------------------------------------


def admin(server: LlmhostServer, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{server.base_url}/admin{path}", headers=headers, timeout=120, **kwargs)


def loaded_engines(server: LlmhostServer, key: str | None = None) -> dict[str, dict[str, Any]]:
    response = admin(server, "GET", "/engines", key)
    assert response.status_code == 200, response.text
    return {engine["model"]: engine for engine in response.json()["engines"]}


def stop_all(server: LlmhostServer) -> None:
    for model in loaded_engines(server):
        admin(server, "POST", f"/models/{model}/stop")


def wait_for(predicate: Callable[[], Any], timeout: float = 30, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {message}", pytrace=False)

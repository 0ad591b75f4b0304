"""Live figures in a real browser while a real engine serves real requests: the overview follows a running
request second by second, and the APIs page's filters narrow the request log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import WatchedPage, admin, serving, wait_for
from playwright.sync_api import Page

from conftest import DEFAULT_MODEL, LlmhostServer

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(tmp_path_factory.mktemp("ui-live")) as running:
        assert admin(running, "POST", f"/models/{DEFAULT_MODEL}/load").status_code == 200
        yield running


def chat(server: LlmhostServer, max_tokens: int, *, stream: bool = False) -> None:
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Count from one to one hundred."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
    }
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        response.read()


def ollama_chat(server: LlmhostServer) -> None:
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "Say hi."}],
        "stream": False,
        "options": {"num_predict": 4},
    }
    assert httpx.post(f"{server.base_url}/api/chat", json=body, timeout=120).status_code == 200


def number(page: Page, selector: str) -> float:
    text = page.locator(selector).inner_text().replace(",", "")
    return float(text) if text.replace(".", "", 1).isdigit() else -1.0


def test_overview_follows_a_running_request(live_server: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(live_server)
    page = watched.open("")
    assert page.locator("#active-empty").is_visible()
    worker = threading.Thread(target=chat, args=(live_server, 300), kwargs={"stream": True})
    worker.start()
    try:
        row = page.locator("#active-table tbody tr[data-state=decoding]")
        row.wait_for(timeout=20_000)
        assert row.locator("td").nth(2).inner_text() == DEFAULT_MODEL
        assert page.locator("#active-count").inner_text() == "1"
        chunks = row.locator("td").nth(6)
        first = int(chunks.inner_text().replace(",", ""))
        wait_for(lambda: int(chunks.inner_text().replace(",", "") or 0) > first, timeout=5, message="chunks to grow")
        wait_for(lambda: number(page, "#tps") > 0, timeout=5, message="tokens/s above 0")
        engine_row = page.locator("#engines-table tbody tr", has_text=DEFAULT_MODEL)
        assert engine_row.locator(".state").inner_text() == "ready"
        watched.screenshot("overview-live")
    finally:
        worker.join(60)
    page.locator("#active-empty").wait_for(state="visible", timeout=10_000)
    wait_for(lambda: number(page, "#rps") > 0, timeout=5, message="requests/s above 0")
    assert int(page.locator("#chart-tps").get_attribute("data-points") or 0) > 0
    watched.assert_clean()


def test_apis_page_filters_narrow_the_request_log(live_server: LlmhostServer, open_page: OpenPage) -> None:
    chat(live_server, 4)
    chat(live_server, 4)
    ollama_chat(live_server)
    watched = open_page(live_server)
    page = watched.open("apis")
    rows = page.locator("#request-log tbody tr")
    wait_for(lambda: rows.count() >= 3, timeout=10, message="the request log")
    everything = rows.count()
    dialects = set(page.locator("#dialect-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.dialect)"))
    assert {"openai", "ollama"} <= dialects
    routes = page.locator("#endpoint-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.route)")
    assert "/v1/chat/completions" in routes and "/api/chat" in routes

    page.select_option("#log-filters select[name=dialect]", "ollama")
    shown = lambda: rows.evaluate_all("rows => rows.map(r => r.dataset.dialect)")  # noqa: E731
    wait_for(lambda: shown() and set(shown()) == {"ollama"}, timeout=10, message="only ollama rows")
    assert 1 <= len(shown()) < everything

    page.select_option("#log-filters select[name=dialect]", "")
    page.select_option("#log-filters select[name=state]", "cancelled")
    page.locator("#log-empty").wait_for(state="visible", timeout=10_000)
    assert rows.count() == 0

    assert int(page.locator("#chart-latency").get_attribute("data-points") or 0) == 0  # follows the filter
    page.select_option("#log-filters select[name=state]", "done")
    wait_for(lambda: rows.count() >= 3, timeout=10, message="done rows")
    assert int(page.locator("#chart-latency").get_attribute("data-points") or 0) >= 3
    watched.screenshot("apis-live")
    watched.assert_clean()

"""The Models page in a real browser: its load, pin and unload buttons change the real scheduler state (checked
through /admin/engines and the llama-server processes), and its performance and comparison tables show measured
figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import SECOND, WatchedPage, loaded_engines, serving, two_models, wait_for
from playwright.sync_api import Locator

from conftest import DEFAULT_MODEL, LlmhostServer, wait_dead

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(tmp_path_factory.mktemp("ui-models"), models=two_models()) as running:
        yield running


def state_of(row: Locator) -> str:
    return row.locator("[data-field=state]").inner_text()


def test_buttons_load_pin_and_unload_the_real_engine(models_server: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(models_server)
    page = watched.open("models")
    row = page.locator(f'#catalog tr[data-model="{DEFAULT_MODEL}"]')
    assert state_of(row) == "stopped" and row.locator("button[data-action=unload]").is_disabled()

    row.locator("button[data-action=load]").click()
    wait_for(lambda: loaded_engines(models_server).get(DEFAULT_MODEL, {}).get("state") == "ready", message="ready")
    wait_for(lambda: state_of(row) == "ready", timeout=5, message="the page to show ready")
    engines = models_server.engines()
    assert len(engines) == 1

    watched.enter_key("test-admin-key")  # no keys configured here: the header goes out all the same
    with page.expect_request(lambda request: request.url.endswith("/pin")) as pin_request:
        row.locator("button[data-action=pin]").click()
    assert pin_request.value.method == "POST"
    assert pin_request.value.headers.get("authorization") == "Bearer test-admin-key"
    wait_for(lambda: loaded_engines(models_server)[DEFAULT_MODEL]["pinned"] is True, timeout=10, message="pinned")
    row.locator("[data-field=pinned]").wait_for(state="visible", timeout=5_000)
    wait_for(lambda: row.locator("button[data-action=pin]").inner_text() == "Unpin", timeout=5, message="Unpin")
    watched.screenshot("models-loaded-pinned")

    row.locator("button[data-action=pin]").click()
    wait_for(lambda: loaded_engines(models_server)[DEFAULT_MODEL]["pinned"] is False, timeout=10, message="unpinned")
    row.locator("[data-field=pinned]").wait_for(state="hidden", timeout=5_000)

    row.locator("button[data-action=unload]").click()
    wait_for(lambda: DEFAULT_MODEL not in loaded_engines(models_server), message="unloaded")
    wait_for(lambda: state_of(row) == "stopped", timeout=5, message="the page to show stopped")
    assert not wait_dead(engines, timeout=10), "the llama-server process survived the unload"
    watched.assert_clean()


def test_performance_and_side_by_side_comparison(models_server: LlmhostServer, open_page: OpenPage) -> None:
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    assert httpx.post(f"{models_server.base_url}/v1/chat/completions", json=body, timeout=120).status_code == 200
    watched = open_page(models_server)
    page = watched.open("models")
    perf = page.locator(f'#perf-table tbody tr[data-model="{DEFAULT_MODEL}"]')
    perf.wait_for(timeout=10_000)
    cells = perf.locator("td").all_inner_texts()
    assert int(cells[1]) >= 1 and cells[3] != "—"  # requests, tokens/s p50 measured

    page.select_option("#compare-a", DEFAULT_MODEL)
    page.select_option("#compare-b", SECOND)
    table = page.locator("#compare-table tbody")
    texts = table.locator("tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    figures = {row[0]: row[1:] for row in texts}
    assert figures["Context per slot"] == ["2,048", "512"]
    assert figures["Parallel slots"] == ["2", "1"]
    assert figures["Tokens/s p50"][0] != "—" and figures["Tokens/s p50"][1] == "—"  # SECOND never served
    assert figures["Quantization"] == ["Q4_1", "Q4_1"]
    watched.screenshot("models-compare")
    watched.assert_clean()

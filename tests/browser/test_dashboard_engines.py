"""The engine manager in a real browser: starting an engine with a parameter really spawns llama-server with it,
the card shows its argv, live log tail and charts; restart and stop really replace and end the process; the form
checks parameters against the profile schema; the cap on running engines comes back as a 429 message."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from browser_kit import SECOND, WatchedPage, admin, loaded_engines, serving, stop_all, two_models, wait_for
from playwright.sync_api import Page

from conftest import DEFAULT_MODEL, LlmhostServer, wait_dead

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(tmp_path_factory.mktemp("ui-engines"), models=two_models(), scheduler={"max_loaded": 1}) as running:
        yield running


@pytest.fixture
def engines_page(manager: LlmhostServer, open_page: OpenPage) -> Iterator[WatchedPage]:
    stop_all(manager)
    watched = open_page(manager)
    watched.open("engines")
    watched.page.locator("#param-ctx").wait_for()  # the form was built from the schema
    yield watched
    stop_all(manager)


def start_from_form(page: Page, model: str, **params: object) -> None:
    page.select_option("#start-model", model)
    for name, value in params.items():
        page.fill(f"#param-{name}", str(value))
    page.click("#start-button")


def test_start_with_a_parameter_then_restart_and_stop(manager: LlmhostServer, engines_page: WatchedPage) -> None:
    page = engines_page.page
    start_from_form(page, DEFAULT_MODEL, ctx=1024, parallel=1)
    page.locator("#start-result.ok").wait_for(timeout=60_000)
    process = wait_for(manager.engines, timeout=10, message="a llama-server child")[0]
    argv = process.cmdline()
    assert argv[argv.index("--ctx-size") + 1] == "1024"

    card = page.locator(f'article.engine[data-model="{DEFAULT_MODEL}"]')
    card.wait_for()
    wait_for(lambda: card.locator("[data-field=state]").inner_text() == "ready", timeout=5, message="ready")
    assert "--ctx-size 1024" in card.locator("[data-field=argv]").inner_text()
    assert card.locator("[data-field=pid]").inner_text() == str(process.pid)
    assert card.locator("[data-field=ctx]").inner_text() == "1,024 \u00d7 1"  # per slot x slots
    log = card.locator("[data-field=log]")
    wait_for(lambda: "srv" in log.inner_text() or "llama" in log.inner_text(), timeout=10, message="engine log lines")
    memory_chart = card.locator('[data-chart="engine_resident_memory_bytes"]')
    wait_for(lambda: int(memory_chart.get_attribute("data-points") or 0) >= 2, timeout=10, message="chart points")
    assert memory_chart.locator("canvas").count() == 1
    engines_page.screenshot("engines-running")

    card.locator("button[data-action=restart]").click()

    def replaced_pid() -> int | None:
        pid = (loaded_engines(manager).get(DEFAULT_MODEL) or {}).get("pid")
        return pid if pid not in (None, process.pid) else None

    new_pid = wait_for(replaced_pid, message="a new engine pid")
    assert not wait_dead([process], timeout=10), "the old engine survived the restart"
    pid_shown = card.locator("[data-field=pid]")
    wait_for(lambda: pid_shown.inner_text() == str(new_pid), timeout=5, message="the new pid on the page")
    assert "--ctx-size 1024" in card.locator("[data-field=argv]").inner_text()  # restart keeps the parameters

    running = manager.engines()
    card.locator("button[data-action=stop]").click()
    card.wait_for(state="detached", timeout=30_000)
    assert DEFAULT_MODEL not in loaded_engines(manager)
    assert not wait_dead(running, timeout=10), "llama-server survived the stop"
    page.locator("#engines-empty").wait_for(state="visible")
    engines_page.assert_clean()


def test_the_form_checks_parameters_against_the_schema(manager: LlmhostServer, engines_page: WatchedPage) -> None:
    page = engines_page.page
    starts: list[str] = []
    page.on("request", lambda request: starts.append(request.url) if request.url.endswith("/start") else None)
    start_from_form(page, DEFAULT_MODEL, ctx=12)
    error = page.locator('[data-param="ctx"] .field-error')
    assert error.is_visible() and "≥ 256" in error.inner_text()
    assert "Fix ctx first" in page.locator("#start-result.error").inner_text()
    assert starts == [], "an invalid form reached the server"

    page.fill("#param-ctx", "")
    page.click("details.advanced summary")
    start_from_form(page, DEFAULT_MODEL, tensor_split="0, 0")  # well-formed, refused by the server's validator
    message = page.locator("#start-result.error")
    message.wait_for(timeout=30_000)
    assert "tensor_split" in message.inner_text() and "HTTP 400" in message.inner_text()
    assert manager.engines() == []
    engines_page.assert_clean("status of 400", "HTTP 400")


def test_the_engine_cap_refusal_is_shown(manager: LlmhostServer, engines_page: WatchedPage) -> None:
    page = engines_page.page
    assert admin(manager, "POST", f"/models/{DEFAULT_MODEL}/start", json={}).status_code == 200
    page.locator(f'article.engine[data-model="{DEFAULT_MODEL}"]').wait_for()
    start_from_form(page, SECOND)
    message = page.locator("#start-result.error")
    message.wait_for(timeout=30_000)
    text = message.inner_text()
    assert "at most 1 engine" in text and DEFAULT_MODEL in text and "HTTP 429" in text
    assert list(loaded_engines(manager)) == [DEFAULT_MODEL] and len(manager.engines()) == 1
    engines_page.screenshot("engines-cap")
    engines_page.assert_clean("status of 429", "HTTP 429")

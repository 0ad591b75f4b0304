"""The Config page in a real browser, on a (fake) two-GPU machine with the real engine: drag the split with the
keyboard, see it checked live, apply it while a chat streams (the stream finishes, the next engine runs with the
new split), read current and previous values and the last change, roll back, save a preset, and edit the YAML."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import WatchedPage, serving, wait_for
from playwright.sync_api import Page

from conftest import DEFAULT_MODEL, LlmhostServer

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]
RIG = [{"name": "RTX 3090", "memory_mib": 24576}, {"name": "RTX 3060", "memory_mib": 12288}]


@pytest.fixture(scope="module")
def two_gpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(tmp_path_factory.mktemp("ui-config"), gpu_backend="fake", fake_gpus=RIG) as running:
        yield running


def tensor_split(server: LlmhostServer) -> str | None:
    chat(server)
    engines = httpx.get(f"{server.base_url}/admin/engines").json()["engines"]
    argv: list[str] = next(e["argv"] for e in engines if e["model"] == DEFAULT_MODEL and e["state"] == "ready")
    return argv[argv.index("--tensor-split") + 1] if "--tensor-split" in argv else None


def chat(server: LlmhostServer, tokens: int = 4) -> list[str]:
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens}
    body |= {"stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=120) as stream:
        assert stream.status_code == 200
        return [line for line in stream.iter_lines() if line]


def set_share(page: Page, gpu: int, presses: int) -> None:
    """Like a user with the keyboard: Home (0), then the arrow key (1 per press)."""
    slider = page.locator(f"#split-slider-{gpu}")
    slider.focus()
    slider.press("Home")
    for _ in range(presses):
        slider.press("ArrowRight")


def test_drag_validate_apply_while_chatting_then_roll_back(two_gpus: LlmhostServer, open_page: OpenPage) -> None:
    assert tensor_split(two_gpus) is None
    watched = open_page(two_gpus)
    page = watched.open("config")
    page.locator("#split-slider-1").wait_for()
    assert "RTX 3060" in page.locator("#split-sliders").inner_text()

    set_share(page, 0, 0)
    set_share(page, 1, 0)
    page.get_by_text("at least one GPU needs a share above zero").wait_for()
    assert page.locator("#split-apply").is_disabled()

    set_share(page, 0, 40)
    set_share(page, 1, 10)
    assert page.locator("#split-share-0").inner_text() == "80 %"
    page.get_by_text("valid: ready to apply").wait_for()
    assert page.locator("#split-proposed").inner_text() == "80 % · 20 %, mode layer"

    streamed: list[str] = []
    chatting = threading.Thread(target=lambda: streamed.extend(chat(two_gpus, tokens=150)))
    chatting.start()
    wait_for(lambda: any(e["slots_busy"] for e in engines(two_gpus)), timeout=20, message="a request in flight")
    page.click("#split-apply")
    page.locator("#split-result.ok").wait_for(timeout=90_000)
    chatting.join(60)
    assert streamed[-1] == "data: [DONE]" and not any('"error"' in line for line in streamed)
    assert tensor_split(two_gpus) == "0.8,0.2"

    page.locator("#split-current").get_by_text("80 % · 20 %, mode layer").wait_for()
    assert page.locator("#split-previous").inner_text().startswith("llama.cpp's default")
    last = page.locator("#last-apply")
    assert "applied" in last.inner_text() and DEFAULT_MODEL in last.inner_text()
    row = page.locator("#history-table tbody tr").first
    assert row.get_attribute("data-result") == "applied"

    watched.screenshot("config-split-applied")
    row.get_by_role("button", name="Roll back").click()
    page.locator("#split-current").get_by_text("llama.cpp's default").wait_for(timeout=90_000)
    assert tensor_split(two_gpus) is None
    watched.assert_clean()


def test_presets_and_the_yaml_editor(two_gpus: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(two_gpus)
    page = watched.open("config")
    page.locator("#split-slider-1").wait_for()
    page.click("button[data-preset=total]")
    wait_for(lambda: page.locator("#split-share-0").inner_text() == "66.7 %", timeout=10, message="shares by total")
    page.click("#split-apply")
    page.locator("#split-result.ok").wait_for(timeout=90_000)

    page.fill("#preset-name", "by-memory")
    page.click("#preset-form button[type=submit]")
    preset = page.locator('#presets-table tr[data-preset="by-memory"]')
    preset.wait_for()
    assert "models" in preset.inner_text()

    editor = page.locator("#config-yaml")
    wait_for(lambda: "tensor_split" in editor.input_value(), timeout=10, message="the document with the split")
    editor.fill(editor.input_value().replace("ctx: 2048", "ctx: nope"))
    page.click("#config-validate")
    page.locator("#config-result.error").get_by_text("ctx").wait_for()

    page.click("#config-reload")
    wait_for(lambda: "ctx: 2048" in editor.input_value(), timeout=10, message="the document reloaded")
    editor.fill(editor.input_value().replace("ctx: 2048", "ctx: 1024"))
    page.click("#config-apply")
    page.locator("#config-result.ok").wait_for(timeout=90_000)

    preset.get_by_role("button", name="Apply").click()
    page.locator("#notice").get_by_text("Preset by-memory applied").wait_for(timeout=90_000)
    assert tensor_split(two_gpus) == "0.6667,0.3333"
    watched.assert_clean()


def engines(server: LlmhostServer) -> list[dict[str, object]]:
    found: list[dict[str, object]] = httpx.get(f"{server.base_url}/admin/engines").json()["engines"]
    return found

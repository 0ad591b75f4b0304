"""Every dashboard page in a real browser: it loads without console errors or failed requests, shows the live
feed, degrades clearly without a GPU, and draws its charts once data arrives."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import PAGES, SHOTS, WatchedPage, serving, two_models, wait_for

from conftest import LlmhostServer

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]
TITLES = ["Overview", "GPUs", "Models", "Engines", "APIs", "Config", "Optimization", "Benchmarks", "Tuning"]
PLACEHOLDERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(tmp_path_factory.mktemp("ui-pages"), models=two_models()) as running:
        yield running


@pytest.mark.parametrize("slug", PAGES, ids=[slug or "overview" for slug in PAGES])
def test_page_loads_live_without_errors(ui_server: LlmhostServer, open_page: OpenPage, slug: str) -> None:
    watched = open_page(ui_server)
    page = watched.open(slug)
    title = TITLES[PAGES.index(slug)]
    assert page.title() == f"{title} · llmhost"
    assert page.locator("nav a").all_inner_texts() == TITLES
    assert page.locator("nav a.active").inner_text() == title
    page.wait_for_timeout(1500)  # a second snapshot, and the page's own fetches, have run
    if slug in PLACEHOLDERS:
        assert PLACEHOLDERS[slug] in page.locator(".banner").inner_text()
        assert page.locator(".planned").count() >= 3
    watched.screenshot(slug or "overview")
    watched.assert_clean()


def test_without_a_gpu_the_pages_say_so_and_show_no_zeros(ui_server: LlmhostServer, open_page: OpenPage) -> None:
    body = httpx.get(f"{ui_server.base_url}/api/metrics/gpu?window=60", timeout=10).json()
    if body["gpus"]:
        pytest.fail("this machine has a GPU: the no-GPU path cannot be checked here", pytrace=False)
    watched = open_page(ui_server)
    overview = watched.open("")
    glance = overview.locator("#gpu-glance")
    glance.get_by_text("No GPU detected").wait_for()
    assert body["no_gpu_reason"] in glance.inner_text()
    assert overview.locator(".gpu-tile").count() == 0

    gpus = watched.open("gpus")
    assert gpus.locator("#no-gpu").is_visible() and gpus.locator("#gpu-area").is_hidden()
    assert gpus.locator("#no-gpu-reason").inner_text() == body["no_gpu_reason"]
    visible = gpus.locator("main").inner_text()
    assert "0 %" not in visible and "0 MiB" not in visible and "0 W" not in visible
    watched.assert_clean()


def test_gpu_colour_follows_the_thresholds_in_the_page(ui_server: LlmhostServer, open_page: OpenPage) -> None:
    """The colouring is a pure function in the page; fed GPU samples, it must honour the thresholds the server
    rendered into the page (GPUs themselves cannot be faked inside the server process from here)."""
    page = open_page(ui_server).open("")
    thresholds = json.loads(page.locator("#gpu-glance").get_attribute("data-thresholds") or "{}")
    assert thresholds == {"utilization_percent": [80, 95], "memory_percent": [85, 95], "temperature_c": [80, 90]}

    def gpu(util: float | None, used: float | None, temp: float | None) -> dict[str, float | None]:
        total = None if used is None else 24000
        return {"utilization_percent": util, "memory_used_mib": used, "memory_total_mib": total, "temperature_c": temp}

    cases = {
        "ok": gpu(10, 1000, 50),
        "warn": gpu(85, 1000, 50),
        "crit": gpu(10, 23500, 50),
        "unknown": gpu(None, None, None),
    }
    levels = page.evaluate(
        "([cases, t]) => Object.fromEntries(Object.entries(cases).map(([k, g]) => [k, LLM.gpuLevel(g, t)]))",
        [cases, thresholds],
    )
    assert levels == {name: name for name in cases}
    hot = dict(cases["ok"], temperature_c=91)
    assert page.evaluate("([g, t]) => LLM.gpuLevel(g, t)", [hot, thresholds]) == "crit"


def test_gpu_card_renders_unmeasured_figures_as_dashes(ui_server: LlmhostServer, open_page: OpenPage) -> None:
    """The GPU page's card renderer, fed one GPU sample where NVML left most figures unsupported."""
    watched = open_page(ui_server)
    page = watched.open("gpus")
    sample = {
        "index": 0, "name": "Test GPU", "uuid": "GPU-1", "pci_bus_id": "00000000:01:00.0",
        "utilization_percent": 97, "memory_used_mib": 1024, "memory_total_mib": 8192, "unified_memory": False,
        "temperature_c": None, "fan_percent": None, "power_draw_w": None, "power_limit_w": None,
        "sm_clock_mhz": None, "memory_clock_mhz": None, "pcie_gen": 3, "pcie_width": 8, "pcie_gen_max": 4,
        "pcie_width_max": 16, "pcie_tx_kib_per_s": None, "pcie_rx_kib_per_s": None,
        "processes": [{"pid": 1, "used_mib": 512, "model": "some-model"}, {"pid": 2, "used_mib": 100, "model": None}],
    }  # fmt: skip
    render = "(g) => { const c = LLM.gpuCard(g); return {text: c.innerText, level: c.dataset.level}; }"
    card = page.evaluate(render, sample)
    text = card["text"]
    assert card["level"] == "crit"  # 97 % utilisation
    assert "97 %" in text and "1 GiB of 8 GiB" in text and "Temperature —" in text and "Fan —" in text
    assert "some-model" in text and "512 MiB" in text and "other process (pid 2)" in text
    assert "0 W" not in text and "0 MHz" not in text
    watched.assert_clean()


def test_charts_draw_once_data_arrives(ui_server: LlmhostServer, open_page: OpenPage) -> None:
    page = open_page(ui_server).open("")
    chart = page.locator("#chart-cpu")
    wait_for(lambda: int(chart.get_attribute("data-points") or 0) >= 2, timeout=10, message="CPU chart points")
    canvas = chart.locator("canvas")
    assert canvas.count() == 1
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    assert page.locator("#chart-cpu .chart-empty").is_hidden()
    drawn = canvas.evaluate(
        """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let lit = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) lit++; return lit; }"""
    )
    assert drawn > 500, "the canvas is (almost) blank"
    SHOTS.mkdir(parents=True, exist_ok=True)
    chart.screenshot(path=str(SHOTS / "chart-cpu.png"))

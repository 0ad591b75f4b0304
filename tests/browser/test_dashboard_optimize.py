"""The Optimization page in a real browser, on a (fake) 4x8 GB rig whose fourth card sits in an x4 slot, with the
real engine having served a few requests: the score and its breakdown, the x4 link recommendation with its
evidence, the cost chart (here vs. API prices), the fit table and the context lengths."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import WatchedPage, serving, wait_for

from conftest import DEFAULT_MODEL, LlmhostServer

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]
ADVISOR = {
    "electricity_price_per_kwh": 0.3,
    "currency": "EUR",
    "api_prices": {"hosted-mini": {"input_per_m": 0.15, "output_per_m": 0.6}},
}


@pytest.fixture(scope="module")
def x4_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    with serving(
        tmp_path_factory.mktemp("ui-optimize"), gpu_backend="fake", fake_gpus="4x8gb-x4", advisor=ADVISOR
    ) as s:
        body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
        for _ in range(2):
            assert httpx.post(
                f"{s.base_url}/v1/chat/completions", json=body | {"ignore_eos": True}, timeout=120
            ).is_success
        yield s


def measured_cost(server: LlmhostServer) -> float:
    def cost() -> float | None:
        rows = httpx.get(f"{server.base_url}/api/advice", timeout=30).json()["efficiency"]["models"]
        return next(r["cost_per_million_tokens"] for r in rows if r["model"] == DEFAULT_MODEL)

    value: float = wait_for(cost, timeout=15, message="a measured cost per million tokens")
    return value


def test_score_recommendations_and_the_cost_chart(x4_rig: LlmhostServer, open_page: OpenPage) -> None:
    measured_cost(x4_rig)
    watched = open_page(x4_rig)
    page = watched.open("optimize")
    assert page.locator(".banner").count() == 0 and page.locator(".planned").count() == 0
    wait_for(lambda: page.locator("#opt-score").inner_text().isdigit(), timeout=15, message="the score")
    score = int(page.locator("#opt-score").inner_text())
    assert score == httpx.get(f"{x4_rig.base_url}/api/advice", timeout=30).json()["score"]["value"]
    assert page.locator("#opt-parts tbody tr").count() == 6
    pcie_row = page.locator('#opt-parts tr[data-part="pcie"]').inner_text()
    assert "16.25 / 20" in pcie_row and "GPU 3's PCIe link runs at 25% of its maximum" in pcie_row

    link = page.locator('.opt-rec[data-kind="pcie_link_below_max"]')
    assert link.count() == 1 and link.is_visible()
    text = link.inner_text()
    assert "GPU 3's PCIe link runs at 25% of its maximum" in text
    assert "Gen 4 x4" in text and "Gen 4 x16" in text and "7.88 GB/s instead of 31.5 GB/s" in text

    chart = page.locator("#chart-cost")
    assert chart.get_attribute("data-bars") == "3"  # this model here, the API's input and output prices
    canvas = chart.locator("canvas")
    assert canvas.count() == 1
    lit = canvas.evaluate(
        """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert lit > 500, "the cost chart is (almost) blank"
    assert page.locator("#chart-energy").get_attribute("data-bars") == "1"
    eff = page.locator(f'#opt-eff tr[data-model="{DEFAULT_MODEL}"]').inner_text()
    assert "80 W" in eff  # 4 x 20 W, the fake RTX 3070s' draw

    assert page.locator("#opt-fit tbody tr").count() == 16  # 15 GPU combinations and the host
    assert "8,192" in page.locator("#opt-ctx").inner_text()  # SmolLM2's true context
    watched.screenshot("optimize")
    watched.assert_clean()

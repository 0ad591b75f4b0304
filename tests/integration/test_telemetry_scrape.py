"""Scraping a real llama-server: its counters move by exactly what one real completion reports in ``usage``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine_probes import CTX, running_engine
from llmhost.telemetry.scrape import EngineStatsBook, relabel_engine_metrics, scrape_engine

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[str]:
    with running_engine(tmp_path / "engine.log", "--metrics", "--slots") as base_url:
        yield base_url


async def test_counters_move_by_the_usage_of_one_completion(engine: str) -> None:
    book = EngineStatsBook()
    async with httpx.AsyncClient() as client:
        before = await scrape_engine(client, engine)
        book.update("smol", before)
        response = await client.post(
            f"{engine}/v1/completions",
            json={"prompt": "The lighthouse keeper", "max_tokens": 16, "temperature": 0},
            timeout=60,
        )
        response.raise_for_status()
        after = await scrape_engine(client, engine)
        rates = book.update("smol", after)

    usage = response.json()["usage"]
    cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    assert usage["completion_tokens"] > 0
    assert before.tokens_predicted_total is not None and after.tokens_predicted_total is not None
    assert after.tokens_predicted_total - before.tokens_predicted_total == usage["completion_tokens"]
    assert before.prompt_tokens_total is not None and after.prompt_tokens_total is not None
    assert after.prompt_tokens_total - before.prompt_tokens_total == usage["prompt_tokens"] - cached
    assert after.requests_processing == 0
    assert after.slots is not None and len(after.slots) == 1
    (slot,) = after.slots
    assert (slot.id, slot.is_processing, slot.n_ctx) == (0, False, CTX)
    assert rates is not None
    assert rates.generation_tokens_per_second is not None and rates.generation_tokens_per_second > 0
    assert rates.generation_throughput is not None and rates.generation_throughput > 0


async def test_engine_series_relabelled_for_re_export(engine: str) -> None:
    async with httpx.AsyncClient() as client:
        stats = await scrape_engine(client, engine)
    assert stats.metrics_text is not None

    families = relabel_engine_metrics({"smol": stats.metrics_text})

    names = {family.name for family in families}
    assert {"llamacpp:tokens_predicted", "llamacpp:requests_processing"} <= names
    assert all(sample.labels == {"model": "smol"} for family in families for sample in family.samples)
    parsed = list(text_string_to_metric_families(stats.metrics_text))
    assert len(families) == len([family for family in parsed if family.name.startswith("llamacpp:")])


async def test_an_engine_without_metrics_or_slots_reports_nothing_rather_than_zeros(tmp_path: Path) -> None:
    with running_engine(tmp_path / "engine.log", "--no-slots") as base_url:
        async with httpx.AsyncClient() as client:
            stats = await scrape_engine(client, base_url)

    assert stats.metrics_text is None and stats.slots is None
    assert stats.tokens_predicted_total is None and stats.requests_processing is None
    assert stats.busy_slots is None

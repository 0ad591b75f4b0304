"""Parsing llama-server's /metrics and /slots, rates from counter deltas, and relabelling for re-export.

The texts below were captured from the llama-server build that setup installs (one 16-token completion)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from llmhost.telemetry.scrape import (
    EngineStats,
    EngineStatsBook,
    SlotStats,
    compute_rates,
    parse_engine_stats,
    parse_metrics,
    relabel_engine_metrics,
)

METRICS = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 0
# HELP llamacpp:prompt_seconds_total Total time spent processing prompts
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total 0.016603
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 16
# HELP llamacpp:tokens_predicted_seconds_total Total time spent generating tokens
# TYPE llamacpp:tokens_predicted_seconds_total counter
llamacpp:tokens_predicted_seconds_total 0.265284
# HELP llamacpp:n_decode_total Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding
# TYPE llamacpp:n_decode_total counter
llamacpp:n_decode_total 16
# HELP llamacpp:n_tokens_max Largest observed sequence length (prompt + generation)
# TYPE llamacpp:n_tokens_max counter
llamacpp:n_tokens_max 16
# HELP llamacpp:prompt_tokens_seconds Average prompt throughput in tokens/s
# TYPE llamacpp:prompt_tokens_seconds gauge
llamacpp:prompt_tokens_seconds 60.2301
# HELP llamacpp:predicted_tokens_seconds Average generation throughput in tokens/s
# TYPE llamacpp:predicted_tokens_seconds gauge
llamacpp:predicted_tokens_seconds 56.5432
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call
# TYPE llamacpp:n_busy_slots_per_decode gauge
llamacpp:n_busy_slots_per_decode 1
"""  # noqa: E501

SLOTS = [
    {
        "id": 0,
        "n_ctx": 1024,
        "speculative": False,
        "is_processing": False,
        "id_task": 2,
        "n_prompt_tokens": 16,
        "n_prompt_tokens_processed": 0,
        "n_prompt_tokens_cache": 0,
        "params": {"n_predict": 16, "temperature": 0.8},
        "next_token": [{"has_next_token": False, "has_new_line": False, "n_remain": -1, "n_decoded": 0}],
    }
]

IDLE_SLOTS = [{"id": 0, "n_ctx": 1024, "speculative": False, "is_processing": False}]

OLDER_BUILD = """\
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.25
# TYPE llamacpp:kv_cache_tokens gauge
llamacpp:kv_cache_tokens 512
"""


def stats(at: float, **figures: Any) -> EngineStats:
    return replace(parse_engine_stats(None, None, scraped_at=at), **figures)


def test_parses_the_engine_counters_and_gauges() -> None:
    result = parse_engine_stats(METRICS, SLOTS, scraped_at=100.0)

    assert result.scraped_at == 100.0
    assert result.prompt_tokens_total == 1
    assert result.prompt_tokens_cached_total == 0
    assert result.prompt_seconds_total == 0.016603
    assert result.tokens_predicted_total == 16
    assert result.tokens_predicted_seconds_total == 0.265284
    assert result.n_decode_total == 16
    assert (result.requests_processing, result.requests_deferred) == (0, 0)
    assert result.kv_cache_usage_ratio is None and result.kv_cache_tokens is None  # this build has none
    assert result.metrics_text == METRICS


def test_parses_slots() -> None:
    result = parse_engine_stats(None, SLOTS, scraped_at=0.0)

    assert result.slots == (SlotStats(0, False, 1024, 16, 0, 0, 0),)
    assert result.busy_slots == 0


def test_an_idle_slot_has_only_what_it_reports() -> None:
    result = parse_engine_stats(None, [*IDLE_SLOTS, {"id": 1, "is_processing": True}], scraped_at=0.0)

    assert result.slots == (
        SlotStats(0, False, 1024, None, None, None, None),
        SlotStats(1, True, None, None, None, None, None),
    )
    assert result.busy_slots == 1


def test_missing_endpoints_leave_every_figure_unknown() -> None:
    result = parse_engine_stats(None, None, scraped_at=0.0)

    assert result.tokens_predicted_total is None and result.requests_processing is None
    assert result.slots is None and result.busy_slots is None
    assert result.metrics_text is None


def test_older_builds_kv_cache_gauges() -> None:
    result = parse_engine_stats(OLDER_BUILD, None, scraped_at=0.0)

    assert (result.kv_cache_usage_ratio, result.kv_cache_tokens) == (0.25, 512)


def test_parse_metrics_names_counters_by_their_samples() -> None:
    values = parse_metrics(METRICS)

    assert values["llamacpp:tokens_predicted_total"] == 16
    assert values["llamacpp:n_busy_slots_per_decode"] == 1


def test_rates_from_counter_deltas() -> None:
    before = stats(
        10.0,
        prompt_tokens_total=100,
        prompt_seconds_total=0.5,
        tokens_predicted_total=40,
        tokens_predicted_seconds_total=2,
    )
    after = stats(
        12.0,
        prompt_tokens_total=300,
        prompt_seconds_total=1.0,
        tokens_predicted_total=90,
        tokens_predicted_seconds_total=3,
    )

    rates = compute_rates(before, after)

    assert rates is not None
    assert rates.interval_s == 2.0
    assert rates.prompt_tokens_per_second == 400.0  # 200 tokens in 0.5 s of prefill
    assert rates.generation_tokens_per_second == 50.0  # 50 tokens in 1 s of decoding
    assert rates.prompt_throughput == 100.0  # 200 tokens in 2 s of wall time
    assert rates.generation_throughput == 25.0


def test_an_idle_interval_has_no_speed_but_a_measured_zero_throughput() -> None:
    figures = {"tokens_predicted_total": 40.0, "tokens_predicted_seconds_total": 2.0}

    rates = compute_rates(stats(10.0, **figures), stats(11.0, **figures))

    assert rates is not None
    assert rates.generation_tokens_per_second is None
    assert rates.generation_throughput == 0.0
    assert rates.prompt_tokens_per_second is None and rates.prompt_throughput is None  # never reported


def test_a_counter_reset_or_a_non_positive_interval_gives_no_rate() -> None:
    restarted = compute_rates(
        stats(10.0, tokens_predicted_total=500, tokens_predicted_seconds_total=9),
        stats(11.0, tokens_predicted_total=20, tokens_predicted_seconds_total=1),
    )

    assert restarted is not None
    assert restarted.generation_tokens_per_second is None and restarted.generation_throughput is None
    assert compute_rates(stats(10.0), stats(10.0)) is None
    assert compute_rates(stats(11.0), stats(10.0)) is None


def test_relabels_and_merges_every_engine_family() -> None:
    second = METRICS.replace("llamacpp:tokens_predicted_total 16", "llamacpp:tokens_predicted_total 7")
    text_with_other = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3\n" + second

    families = {family.name: family for family in relabel_engine_metrics({"a": METRICS, "b": text_with_other})}

    assert "process_cpu_seconds" not in families  # only the engine's own series
    predicted = families["llamacpp:tokens_predicted"]
    assert predicted.type == "counter"
    assert {(s.name, s.labels["model"], s.value) for s in predicted.samples} == {
        ("llamacpp:tokens_predicted_total", "a", 16),
        ("llamacpp:tokens_predicted_total", "b", 7),
    }
    assert all(sample.labels.keys() == {"model"} for family in families.values() for sample in family.samples)


def test_relabelled_families_expose_and_parse_back() -> None:
    class Passthrough(Collector):
        def collect(self) -> list[Metric]:
            return relabel_engine_metrics({"smol": METRICS})

    registry = CollectorRegistry()
    registry.register(Passthrough())

    parsed = {family.name: family for family in text_string_to_metric_families(generate_latest(registry).decode())}

    processing = parsed["llamacpp:requests_processing"]
    assert processing.type == "gauge"
    assert processing.samples[0].labels == {"model": "smol"}
    assert parsed["llamacpp:prompt_seconds"].samples[0].value == 0.016603


def test_a_text_that_does_not_parse_is_skipped() -> None:
    families = relabel_engine_metrics({"broken": "llamacpp:oops{ 1\n", "smol": METRICS})

    assert {sample.labels["model"] for family in families for sample in family.samples} == {"smol"}


def test_the_book_keeps_the_latest_scrape_and_the_rates_since_the_one_before() -> None:
    book = EngineStatsBook()
    first = parse_engine_stats(METRICS, SLOTS, scraped_at=10.0)
    later = METRICS.replace("tokens_predicted_total 16", "tokens_predicted_total 26").replace(
        "tokens_predicted_seconds_total 0.265284", "tokens_predicted_seconds_total 0.765284"
    )

    assert book.update("smol", first) is None
    rates = book.update("smol", parse_engine_stats(later, SLOTS, scraped_at=12.0))

    assert rates is not None and rates.generation_tokens_per_second == pytest.approx(20.0)
    assert book.rates("smol") == rates
    assert book.latest("smol") is not None and book.metrics_texts() == {"smol": later}
    book.forget("smol")
    assert book.latest("smol") is None and book.rates("smol") is None and book.metrics_texts() == {}


def test_generation_throughput_counts_tokens_of_tasks_still_decoding() -> None:
    """The engine adds a task's tokens to its counter only when the task ends; /slots n_decoded fills the gap."""

    def slot(slot_id: int, busy: bool, decoded: int) -> SlotStats:
        return SlotStats(slot_id, busy, 2048, 10, 10, 0, decoded)

    before = stats(10.0, tokens_predicted_total=100, slots=(slot(0, True, 30), slot(1, False, 0)))
    # slot 0 finished its task (30 + 20 more tokens went into the counter) and started another (5 so far);
    # slot 1 started one and has 15
    after = stats(11.0, tokens_predicted_total=150, slots=(slot(0, True, 5), slot(1, True, 15)))
    rates = compute_rates(before, after)
    assert rates is not None and rates.generation_throughput == (150 + 20) - (100 + 30)
    assert after.tokens_generated == 170

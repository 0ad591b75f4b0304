"""Level metrics from hand-built request timelines, with the expected numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmhost.bench.metrics import ITL_BUCKETS_MS, Distribution, LevelMetrics, Slo, compute_level, itl_histogram
from llmhost.bench.records import RequestRecord
from llmhost.bench.workload import Level

LEVEL = Level(concurrency=2)


def record(
    index: int,
    t0: float,
    chunks: list[float],
    end: float,
    *,
    tokens: int | None,
    prompt: int | None = 10,
    target: int = 4,
) -> RequestRecord:
    result = RequestRecord(index, 10, target, t0, end=end, chunk_times=list(chunks))
    if chunks:
        result.first, result.last = chunks[0], chunks[-1]
    result.completion_tokens, result.prompt_tokens = tokens, prompt
    result.tokens_estimated, result.input_estimated = tokens is None, prompt is None
    return result


def failed(index: int, t0: float, end: float, code: str) -> RequestRecord:
    return RequestRecord(index, 10, 4, t0).fail(code, "boom", end)


def timeline() -> list[RequestRecord]:
    """Three successes and two failures over exactly one second."""
    return [
        record(0, 0.0, [0.1, 0.15, 0.2, 0.25], 0.3, tokens=4),  # TTFT 100, TPOT 50, E2E 300, ITL 50 50 50
        record(1, 0.05, [0.25, 0.45], 0.5, tokens=3, target=3),  # one event carried 2 tokens: TPOT 100, ITL 200
        record(2, 0.3, [0.7], 0.8, tokens=1, target=8),  # TTFT 400, one token: no TPOT; stopped short of 8
        failed(3, 0.3, 0.31, "http_503"),
        failed(4, 0.5, 1.0, "timeout"),
    ]


def test_per_request_definitions() -> None:
    first, second, single, *_ = timeline()
    assert first.ttft == pytest.approx(0.1)
    assert first.tpot == pytest.approx(0.05)  # (0.25 - 0.1) / (4 - 1)
    assert first.e2e == pytest.approx(0.3)
    assert first.itl == pytest.approx([0.05, 0.05, 0.05])
    assert second.tpot == pytest.approx(0.1)  # (0.45 - 0.25) / (3 - 1): tokens from usage, not events
    assert second.itl == pytest.approx([0.2])
    assert single.tpot is None


def test_counts_durations_and_throughput() -> None:
    metrics = compute_level(LEVEL, timeline())
    assert (metrics.requests, metrics.completed, metrics.failed) == (5, 3, 2)
    assert metrics.errors == {"http_503": 1, "timeout": 1}
    assert metrics.error_rate == pytest.approx(0.4)
    assert metrics.duration_s == pytest.approx(1.0)  # min t0 0.0 .. max end 1.0, failures included
    assert (metrics.input_tokens, metrics.output_tokens) == (30, 8)  # successful requests only
    assert metrics.request_throughput == pytest.approx(3.0)
    assert metrics.output_throughput == pytest.approx(8.0)
    assert metrics.input_throughput == pytest.approx(30.0)
    assert metrics.total_token_throughput == pytest.approx(38.0)
    assert metrics.observed_concurrency == pytest.approx(0.3 + 0.45 + 0.5 + 0.01 + 0.5)  # sum of E2E / 1 s
    assert metrics.tokens_per_chunk == pytest.approx(8 / 7)
    assert metrics.short_outputs == 1
    assert (metrics.output_estimated, metrics.input_estimated) == (0, 0)


def test_distributions_in_milliseconds() -> None:
    metrics = compute_level(LEVEL, timeline())
    ttft = metrics.ttft_ms
    assert ttft is not None
    assert ttft.count == 3
    assert (ttft.min, ttft.max) == pytest.approx((100.0, 400.0))
    assert ttft.mean == pytest.approx(700 / 3)
    assert ttft.std == pytest.approx(
        math.sqrt(((100 - 700 / 3) ** 2 + (200 - 700 / 3) ** 2 + (400 - 700 / 3) ** 2) / 3)
    )
    # linear interpolation between closest ranks: rank (n - 1) q / 100 over [100, 200, 400]
    assert (ttft.p50, ttft.p90, ttft.p95, ttft.p99) == pytest.approx((200.0, 360.0, 380.0, 396.0))
    tpot = metrics.tpot_ms
    assert tpot is not None and tpot.count == 2
    assert (tpot.p50, tpot.p99, tpot.mean) == pytest.approx((75.0, 99.5, 75.0))
    itl = metrics.itl_ms
    assert itl is not None and itl.count == 4  # every gap of every successful request
    assert (itl.p50, itl.p90, itl.mean) == pytest.approx((50.0, 155.0, 87.5))
    e2e = metrics.e2e_ms
    assert e2e is not None
    assert (e2e.p50, e2e.min, e2e.max) == pytest.approx((450.0, 300.0, 500.0))


def test_goodput_needs_every_slo() -> None:
    strict = compute_level(LEVEL, timeline(), Slo(ttft_ms=250, tpot_ms=60))
    assert strict.good_requests == 1  # only request 0: request 1 misses TPOT, request 2 misses TTFT
    assert strict.goodput_rps == pytest.approx(1.0)
    assert strict.goodput_tok_s == pytest.approx(4.0)
    ttft_only = compute_level(LEVEL, timeline(), Slo(ttft_ms=500))
    assert ttft_only.good_requests == 3  # a one-token request counts as TPOT 0
    tpot_only = compute_level(LEVEL, timeline(), Slo(tpot_ms=50))
    assert tpot_only.good_requests == 2  # TPOT 50 meets a 50 ms limit; the one-token request too
    assert compute_level(LEVEL, timeline(), Slo(e2e_ms=400)).good_requests == 1
    assert compute_level(LEVEL, timeline()).good_requests == 3  # no SLO: every success is good


def test_estimated_counts_are_flagged() -> None:
    records = [record(0, 0.0, [0.1, 0.2, 0.3], 0.4, tokens=None, prompt=None)]
    metrics = compute_level(LEVEL, records)
    assert metrics.output_tokens == 3  # one per content event when the server sent no usage
    assert (metrics.output_estimated, metrics.input_estimated) == (1, 1)
    assert metrics.input_tokens == 10  # the prompt length that was asked for


def test_empty_and_all_failed_levels() -> None:
    empty = compute_level(LEVEL, [])
    assert (empty.requests, empty.duration_s, empty.output_throughput) == (0, 0.0, 0.0)
    assert empty.ttft_ms is None
    dead = compute_level(LEVEL, [failed(0, 0.0, 0.5, "connect"), failed(1, 0.1, 0.2, "connect")])
    assert dead.errors == {"connect": 2}
    assert dead.completed == 0 and dead.ttft_ms is None and dead.tokens_per_chunk is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], (2.5, 3.7, 3.85, 3.97)),
        ([5.0], (5.0, 5.0, 5.0, 5.0)),
        ([10.0, 0.0], (5.0, 9.0, 9.5, 9.9)),
    ],
)
def test_percentiles_interpolate_linearly(values: list[float], expected: tuple[float, ...]) -> None:
    distribution = Distribution.of(values)
    assert distribution is not None
    assert (distribution.p50, distribution.p90, distribution.p95, distribution.p99) == pytest.approx(expected)


def test_percentiles_match_numpy_default() -> None:
    values = np.random.default_rng(7).lognormal(3, 1, 101).tolist()
    distribution = Distribution.of(values)
    assert distribution is not None
    for q in (50, 90, 95, 99):
        assert distribution.get(f"p{q}") == pytest.approx(float(np.percentile(values, q)))


def test_itl_histogram_buckets() -> None:
    counts = itl_histogram([0.0005, 0.0015, 0.05, 0.0501, 10.0])
    assert len(counts) == len(ITL_BUCKETS_MS) + 1
    assert counts[0] == 1 and counts[1] == 1  # [0, 1 ms) and [1, 2 ms)
    assert counts[ITL_BUCKETS_MS.index(100)] == 2  # [50, 100 ms)
    assert counts[-1] == 1 and sum(counts) == 5


def test_level_metrics_round_trip_through_json() -> None:
    metrics = compute_level(Level(rate=2.5, max_concurrency=4), timeline(), Slo(ttft_ms=250))
    again = LevelMetrics.from_dict(metrics.to_dict())
    assert again == metrics
    assert again.level.label == "2.5 req/s max 4"

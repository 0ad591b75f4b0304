"""The APIs page's per-endpoint figures (pure Python, no browser): counts, error rates and latency percentiles
folded from the HTTP metrics collector, percentiles interpolated inside histogram buckets."""

from __future__ import annotations

import math

import pytest

from llmhost.telemetry.prometheus import HttpMetrics
from llmhost.web.endpoint_stats import bucket_quantile, endpoint_stats


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.1, 0.0), (0.25, 2.0), (0.5, 4.0), (math.inf, 4.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.25)
    assert bucket_quantile(0.9, buckets) == pytest.approx(0.45)


def test_quantile_without_observations_is_unknown_and_overflow_reports_the_top_bound() -> None:
    assert bucket_quantile(0.5, []) is None
    assert bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert bucket_quantile(0.99, [(0.1, 0.0), (1.0, 0.0), (math.inf, 3.0)]) == 1.0


def test_endpoint_rows_from_the_collector() -> None:
    metrics = HttpMetrics()
    for seconds in (0.05, 0.2, 0.3):
        metrics.observe("openai", "/v1/chat/completions", "POST", 200, seconds)
    metrics.observe("openai", "/v1/chat/completions", "POST", 429, 0.01)
    metrics.observe("ollama", "/api/tags", "GET", 200, 0.01)
    rows = {(row["dialect"], row["route"]): row for row in endpoint_stats(metrics.collect())}
    chat = rows[("openai", "/v1/chat/completions")]
    assert chat["requests"] == 4 and chat["errors"] == 1 and chat["error_rate"] == 0.25
    assert chat["by_code"] == {"200": 3, "429": 1} and chat["methods"] == ["POST"]
    assert chat["latency_s"]["p50"] == pytest.approx(0.1)  # 2 of 4 observations are at most 0.1 s
    assert chat["latency_s"]["p90"] == pytest.approx(0.4)  # 3.6th of 4: 60 % into the (0.25, 0.5] bucket
    assert rows[("ollama", "/api/tags")]["error_rate"] == 0.0

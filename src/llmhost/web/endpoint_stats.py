"""Per-endpoint request counts, error rates and latency percentiles from the HTTP metrics collector.

The counters live since the service started (Prometheus semantics); percentiles are estimated from the histogram
buckets by linear interpolation inside the bucket, as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Metric

QUANTILES = (0.5, 0.9, 0.99)
RouteKey = tuple[str, str]  # (dialect, route)


@dataclass
class EndpointStats:
    dialect: str
    route: str
    methods: set[str] = field(default_factory=set)
    by_code: dict[str, int] = field(default_factory=dict)
    buckets: list[tuple[float, float]] = field(default_factory=list)  # (upper bound, cumulative count)

    @property
    def requests(self) -> int:
        return sum(self.by_code.values())

    @property
    def errors(self) -> int:
        return sum(count for code, count in self.by_code.items() if not code.isdigit() or int(code) >= 400)

    def view(self) -> dict[str, Any]:
        requests = self.requests
        latency = {f"p{round(q * 100)}": bucket_quantile(q, self.buckets) for q in QUANTILES}
        return {
            "dialect": self.dialect,
            "route": self.route,
            "methods": sorted(self.methods),
            "requests": requests,
            "errors": self.errors,
            "error_rate": self.errors / requests if requests else None,
            "by_code": dict(sorted(self.by_code.items())),
            "latency_s": latency,
        }


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram; None without observations. Observations in the +Inf bucket
    report the highest finite bound (the estimate cannot say more)."""
    ordered = sorted(buckets)
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def endpoint_stats(families: Iterable[Metric]) -> list[dict[str, Any]]:
    """Fold ``llmhost_http_responses`` and ``llmhost_http_response_seconds`` into one row per (dialect, route)."""
    rows: dict[RouteKey, EndpointStats] = {}

    def row(labels: dict[str, str]) -> EndpointStats:
        key = (labels["dialect"], labels["route"])
        return rows.setdefault(key, EndpointStats(*key))

    for family in families:
        for sample in family.samples:
            if sample.name == "llmhost_http_responses_total":
                stats = row(sample.labels)
                stats.methods.add(sample.labels["method"])
                code = sample.labels["code"]
                stats.by_code[code] = stats.by_code.get(code, 0) + int(sample.value)
            elif sample.name == "llmhost_http_response_seconds_bucket":
                row(sample.labels).buckets.append((float(sample.labels["le"]), sample.value))
    return [rows[key].view() for key in sorted(rows)]

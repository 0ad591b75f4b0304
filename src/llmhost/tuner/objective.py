"""What a trial is scored by, and the constraints that make it feasible.

Metrics: ``throughput`` (output tok/s), ``total_throughput`` (input + output tok/s), ``request_throughput``
(req/s), ``goodput`` (requests meeting every SLO per second, needs an SLO), ``goodput_tokens`` (their output
tok/s) are maximised; ``ttft``, ``tpot``, ``itl``, ``e2e`` at a statistic (p50, p90, p95, p99 or mean) are
minimised. Constraints: each SLO at ``slo_statistic`` (``(observed - limit) / limit``) and the error rate
(``error_rate - max_error_rate``); a trial is feasible when all are <= 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmhost.bench.metrics import LevelMetrics, Slo
from llmhost.tuner.strategies import Direction

MAXIMISED = {
    "throughput": "output_throughput",
    "total_throughput": "total_token_throughput",
    "request_throughput": "request_throughput",
    "goodput": "goodput_rps",
    "goodput_tokens": "goodput_tok_s",
}
MINIMISED = ("ttft", "tpot", "itl", "e2e")
STATISTICS = ("mean", "p50", "p90", "p95", "p99")
UNITS = {"throughput": "tok/s", "total_throughput": "tok/s", "goodput_tokens": "tok/s"}


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str = "throughput"
    statistic: str = "p99"  # for latency metrics
    slo: Slo = field(default_factory=Slo)
    slo_statistic: str = "p99"
    max_error_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in MAXIMISED and self.metric not in MINIMISED:
            raise ValueError(f"unknown objective {self.metric!r}; choose from {', '.join([*MAXIMISED, *MINIMISED])}")
        if self.statistic not in STATISTICS or self.slo_statistic not in STATISTICS:
            raise ValueError(f"statistics are one of {', '.join(STATISTICS)}")
        if self.metric.startswith("goodput") and not self.slo.defined:
            raise ValueError("a goodput objective needs an SLO (ttft, tpot or e2e limit)")

    @property
    def direction(self) -> Direction:
        return "maximize" if self.metric in MAXIMISED else "minimize"

    @property
    def label(self) -> str:
        if self.metric in MAXIMISED:
            return f"{self.metric} ({UNITS.get(self.metric, 'req/s')})"
        return f"{self.metric} {self.statistic} (ms)"

    def value(self, metrics: LevelMetrics) -> float | None:
        """The score of a level; None when the level produced nothing to score."""
        if self.metric in MAXIMISED:
            return float(getattr(metrics, MAXIMISED[self.metric])) if metrics.completed else None
        distribution = metrics.distribution(self.metric)
        return distribution.get(self.statistic) if distribution is not None else None

    def constraints(self, metrics: LevelMetrics) -> dict[str, float]:
        values = {"error_rate": metrics.error_rate - self.max_error_rate}
        for name, limit in self.slo.limits().items():
            distribution = metrics.distribution(name)
            observed = distribution.get(self.slo_statistic) if distribution is not None else float("inf")
            values[f"slo_{name}"] = min((observed - limit) / limit, 1e6)
        return values

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def improves(self, value: float | None, best: float | None) -> bool:
        """``value`` is a new best (anything beats no best yet; no value beats nothing)."""
        return value is not None and (best is None or self.better(value, best))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "statistic": self.statistic,
            "slo": {"ttft_ms": self.slo.ttft_ms, "tpot_ms": self.slo.tpot_ms, "e2e_ms": self.slo.e2e_ms},
            "slo_statistic": self.slo_statistic,
            "max_error_rate": self.max_error_rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Objective:
        return cls(data["metric"], data["statistic"], Slo(**data["slo"]), data["slo_statistic"], data["max_error_rate"])

"""Per-level metrics with the definitions of anchors-perf.md §1.8.

- duration: first request sent (min t0) to last stream ended (max end), over every request of the level.
- throughputs: completed requests, output tokens and input + output tokens of successful requests / duration.
- goodput: successful requests meeting every SLO / duration (vLLM ``--goodput``, DistServe); a request with one
  output token counts as TPOT 0. ``goodput_tok_s`` is the output tokens of those requests / duration.
- observed concurrency: sum of E2E / duration (Little's law; SGLang's "Concurrency").
- distributions in milliseconds over successful requests: mean, population std, min, max and p50/p90/p95/p99 by
  linear interpolation between closest ranks (``numpy.percentile``'s default). ITL is over every gap between
  content events of every successful request.

Percentiles belong to one level: never average them across levels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from llmhost.bench.records import RequestRecord
from llmhost.bench.workload import Level

QUANTILES = (50, 90, 95, 99)
ITL_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # upper edges; the last bucket is open


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution | None:
        if not values:
            return None
        data = np.asarray(values, dtype=float)
        p50, p90, p95, p99 = (float(v) for v in np.percentile(data, QUANTILES))
        low, high = float(data.min()), float(data.max())
        return cls(len(data), float(data.mean()), float(data.std()), low, high, p50, p90, p95, p99)

    def get(self, statistic: str) -> float:
        """``mean``, ``p99``, ... by name."""
        return float(getattr(self, statistic))


@dataclass(frozen=True, slots=True)
class Slo:
    """Per-request service-level objectives in milliseconds; None = no limit."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    @property
    def defined(self) -> bool:
        return any(limit is not None for limit in (self.ttft_ms, self.tpot_ms, self.e2e_ms))

    def limits(self) -> dict[str, float]:
        """Metric name -> limit, for the limits that are set."""
        pairs = {"ttft": self.ttft_ms, "tpot": self.tpot_ms, "e2e": self.e2e_ms}
        return {name: limit for name, limit in pairs.items() if limit is not None}

    def met_by(self, record: RequestRecord) -> bool:
        if not record.ok:
            return False
        ttft = record.ttft
        observed = {"ttft": ttft, "tpot": record.tpot or 0.0, "e2e": record.e2e}
        for name, limit in self.limits().items():
            value = observed[name]
            if value is None or value * 1000 > limit:
                return False
        return True


@dataclass(frozen=True, slots=True)
class LevelMetrics:
    level: Level
    requests: int
    completed: int
    failed: int
    errors: dict[str, int]
    duration_s: float
    input_tokens: int
    output_tokens: int
    request_throughput: float  # req/s
    input_throughput: float  # tok/s
    output_throughput: float  # tok/s
    total_token_throughput: float  # tok/s
    good_requests: int
    goodput_rps: float
    goodput_tok_s: float
    observed_concurrency: float
    ttft_ms: Distribution | None
    tpot_ms: Distribution | None
    itl_ms: Distribution | None
    e2e_ms: Distribution | None
    itl_histogram: list[int] = field(default_factory=list)  # counts per ITL_BUCKETS_MS bucket
    tokens_per_chunk: float | None = None
    output_estimated: int = 0  # successful requests whose output count is not from usage
    input_estimated: int = 0
    short_outputs: int = 0  # ended before max_tokens: the server did not honour ignore_eos

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    def distribution(self, metric: str) -> Distribution | None:
        """``ttft``, ``tpot``, ``itl`` or ``e2e``."""
        result: Distribution | None = getattr(self, f"{metric}_ms")
        return result

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["level"] = self.level.to_dict()
        data["error_rate"] = self.error_rate
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelMetrics:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["level"] = Level.from_dict(data["level"])
        for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            if values.get(name) is not None:
                values[name] = Distribution(**values[name])
        return cls(**values)


def compute_level(level: Level, records: Sequence[RequestRecord], slo: Slo | None = None) -> LevelMetrics:
    slo = slo or Slo()
    ok = [record for record in records if record.ok]
    duration = _duration(records)
    out_tokens = sum(record.output_tokens for record in ok)
    in_tokens = sum(record.input_tokens for record in ok)
    good = [record for record in ok if slo.met_by(record)]
    chunks = sum(len(record.chunk_times) for record in ok)
    itl = [gap for record in ok for gap in record.itl]
    return LevelMetrics(
        level=level,
        requests=len(records),
        completed=len(ok),
        failed=len(records) - len(ok),
        errors=dict(Counter(record.error_code or "error" for record in records if not record.ok)),
        duration_s=duration,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        request_throughput=_rate(len(ok), duration),
        input_throughput=_rate(in_tokens, duration),
        output_throughput=_rate(out_tokens, duration),
        total_token_throughput=_rate(in_tokens + out_tokens, duration),
        good_requests=len(good),
        goodput_rps=_rate(len(good), duration),
        goodput_tok_s=_rate(sum(record.output_tokens for record in good), duration),
        observed_concurrency=_rate(sum(record.e2e for record in records), duration),
        ttft_ms=Distribution.of(_ms(record.ttft for record in ok)),
        tpot_ms=Distribution.of(_ms(record.tpot for record in ok)),
        itl_ms=Distribution.of(_ms(itl)),
        e2e_ms=Distribution.of(_ms(record.e2e for record in ok)),
        itl_histogram=itl_histogram(itl),
        tokens_per_chunk=out_tokens / chunks if chunks else None,
        output_estimated=sum(record.tokens_estimated for record in ok),
        input_estimated=sum(record.input_estimated for record in ok),
        short_outputs=sum(record.output_tokens < record.output_target for record in ok),
    )


def itl_histogram(gaps_s: Sequence[float]) -> list[int]:
    """Counts of ITL gaps per bucket: [0, 1 ms), [1, 2 ms), ..., [5000 ms, inf)."""
    edges = np.array((0.0, *ITL_BUCKETS_MS, np.inf))
    counts, _ = np.histogram(np.asarray(gaps_s, dtype=float) * 1000, bins=edges)
    return [int(count) for count in counts]


def _duration(records: Sequence[RequestRecord]) -> float:
    if not records:
        return 0.0
    return max(record.end for record in records) - min(record.t0 for record in records)


def _rate(amount: float, duration: float) -> float:
    return amount / duration if duration > 0 else 0.0


def _ms(values: Any) -> list[float]:
    return [value * 1000 for value in values if value is not None]

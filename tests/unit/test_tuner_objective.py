"""Objectives: the score of a level, its direction, and the SLO and error constraints."""

from __future__ import annotations

import pytest

from llmhost.bench.metrics import LevelMetrics, Slo, compute_level
from llmhost.bench.records import RequestRecord
from llmhost.bench.workload import Level
from llmhost.tuner.objective import Objective


def level(failures: int = 0) -> LevelMetrics:
    records = []
    for index, ttft in enumerate((0.1, 0.2, 0.3, 0.4)):
        record = RequestRecord(index, 8, 5, 0.0, end=1.0, chunk_times=[ttft, 0.5, 0.6, 0.7, ttft + 0.6])
        record.first, record.last, record.completion_tokens, record.prompt_tokens = ttft, ttft + 0.6, 5, 8
        records.append(record)
    records += [RequestRecord(9 + i, 8, 5, 0.0).fail("http_500", "x", 1.0) for i in range(failures)]
    return compute_level(Level(concurrency=4), records, Slo(ttft_ms=250))


def test_throughput_is_maximised() -> None:
    objective = Objective()
    assert objective.direction == "maximize" and objective.label == "throughput (tok/s)"
    assert objective.value(level()) == pytest.approx(20.0)  # 4 x 5 tokens in 1 s
    assert objective.better(2.0, 1.0) and objective.improves(1.0, None) and not objective.improves(None, 1.0)


def test_latency_is_minimised_at_a_statistic() -> None:
    objective = Objective("ttft", "p50")
    assert objective.direction == "minimize" and objective.label == "ttft p50 (ms)"
    assert objective.value(level()) == pytest.approx(250.0)
    assert objective.better(1.0, 2.0)


def test_goodput_needs_an_slo() -> None:
    with pytest.raises(ValueError, match="SLO"):
        Objective("goodput")
    objective = Objective("goodput", slo=Slo(ttft_ms=250))
    assert objective.value(level()) == pytest.approx(2.0)  # TTFT 100 and 200 ms meet 250 ms


def test_constraints() -> None:
    objective = Objective(slo=Slo(ttft_ms=250, tpot_ms=1000), slo_statistic="p50")
    constraints = objective.constraints(level())
    assert constraints["slo_ttft"] == pytest.approx(0.0)  # p50 250 ms at a 250 ms limit: just feasible
    assert constraints["slo_tpot"] < 0
    assert constraints["error_rate"] == pytest.approx(-0.05)
    assert Objective().constraints(level(failures=1))["error_rate"] == pytest.approx(0.2 - 0.05)


def test_round_trip_and_validation() -> None:
    objective = Objective("tpot", "p90", Slo(e2e_ms=900), "p95", 0.1)
    assert Objective.from_dict(objective.to_dict()) == objective
    for bad in ({"metric": "speed"}, {"statistic": "p42"}):
        with pytest.raises(ValueError):
            Objective(**bad)  # type: ignore[arg-type]

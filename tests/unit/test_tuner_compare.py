"""The TPE-vs-grid bookkeeping (best-so-far curves, trials to reach the grid optimum) and parameter importances."""

from __future__ import annotations

import pytest

from llmhost.tuner.compare import best_so_far, trials_to_params, trials_to_reach
from llmhost.tuner.importance import param_importances
from llmhost.tuner.job import JobSummary, TuneConfig
from llmhost.tuner.objective import Objective
from llmhost.tuner.records import JobRecord, TrialRecord
from llmhost.tuner.space import SearchSpace


def trial(number: int, value: float | None, parallel: int, *, feasible: bool = True) -> TrialRecord:
    status = "complete" if value is not None else "failed"
    constraints = {"error_rate": -0.05 if feasible else 0.5}
    return TrialRecord("j", number, "search", {"parallel": parallel}, status, value, constraints)


TRIALS = [
    TrialRecord("j", 0, "baseline", {"parallel": 1}, "complete", 10.0, {}),
    trial(1, 20.0, 2),
    trial(2, None, 8),
    trial(3, 95.0, 4, feasible=False),  # fast but broke a constraint: does not count
    trial(4, 30.0, 4),
    trial(5, 25.0, 3),
]


def test_best_so_far_skips_the_baseline_failures_and_infeasible_trials() -> None:
    assert best_so_far(TRIALS, Objective()) == [20.0, 20.0, 20.0, 30.0, 30.0]
    assert best_so_far(TRIALS, Objective("ttft")) == [20.0, 20.0, 20.0, 20.0, 20.0]


def test_trials_to_reach_a_tolerance() -> None:
    curve = best_so_far(TRIALS, Objective())
    assert trials_to_reach(curve, 31.0, Objective(), 0.05) == 4  # 30 >= 0.95 x 31
    assert trials_to_reach(curve, 40.0, Objective(), 0.05) is None
    assert trials_to_reach([None, 21.0], 20.0, Objective("ttft"), 0.05) == 2  # minimising: <= 1.05 x 20


def test_trials_to_the_grid_best_parameters() -> None:
    assert trials_to_params(TRIALS, {"parallel": 4}) == 3  # counted among search trials
    assert trials_to_params(TRIALS, {"parallel": 16}) is None


def test_parameter_importances() -> None:
    space = SearchSpace.from_dict({"parameters": {"parallel": [1, 2, 4, 8], "batch": [64, 256]}})
    trials = [TrialRecord("j", 0, "baseline", {"parallel": 3, "batch": None}, "complete", 1.0, {})]  # not a point
    points = [(1, 64), (2, 256), (4, 64), (8, 256), (8, 64), (1, 256)]
    for number, (parallel, batch) in enumerate(points, start=1):
        value = parallel * 10.0 + batch / 256  # slots matter far more than the batch
        trials.append(TrialRecord("j", number, "search", {"parallel": parallel, "batch": batch}, "complete", value, {}))
    job = JobRecord("j", "m", "completed", {}, None, 0.0, 0.0)
    importances = param_importances(JobSummary(job, TuneConfig("m", space), trials))
    assert set(importances) == {"parallel", "batch"}
    assert importances["parallel"] > importances["batch"]
    assert sum(importances.values()) == pytest.approx(1.0)
    assert param_importances(JobSummary(job, TuneConfig("m", space), trials[:2])) == {}

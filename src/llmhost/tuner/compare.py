"""How well TPE does against an exhaustive grid on the same space, in one run (``llmhost tune compare``).

The grid job runs every feasible point plus the baseline; the TPE job then gets the same number of trials.
Reported: the grid optimum, the tuned (grid-best) value against the baseline, and how many TPE trials it took
to come within ``tolerance`` of the grid optimum (by measured value, and by finding the grid's best parameters).
Benchmarks of one configuration differ between runs (9-19% on a quiet 2-core machine, far more on a busy one),
so the grid's best and the baseline are then measured again, interleaved (A, B, A, B, ...), for a tuned-vs-default
figure that one noisy trial cannot make (SCOOT re-tests its final configuration for the same reason).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llmhost.bench.runner import run_benchmark
from llmhost.bench.store import BenchStore
from llmhost.config import ModelProfile
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.executor import Executor
from llmhost.tuner.job import JobSummary, TuneConfig, TuningJob
from llmhost.tuner.objective import Objective
from llmhost.tuner.records import TrialRecord
from llmhost.tuner.store import TunerStore


@dataclass(slots=True)
class Comparison:
    grid: JobSummary
    tpe: JobSummary
    tolerance: float
    tpe_curve: list[float | None]  # best feasible value after each TPE trial
    trials_to_tolerance: int | None  # TPE trials until the best is within tolerance of the grid optimum
    trials_to_grid_best: int | None  # TPE trials until it ran the grid's best parameters
    confirmation: dict[str, list[float | None]] = field(default_factory=dict)  # re-measured: baseline, tuned

    @property
    def confirmed_gain(self) -> float | None:
        """Median of the re-measured tuned values over the median of the baseline's, minus one."""
        tuned = [v for v in self.confirmation.get("tuned", []) if v is not None]
        baseline = [v for v in self.confirmation.get("baseline", []) if v is not None]
        if not tuned or not baseline or not statistics.median(baseline):
            return None
        gain = statistics.median(tuned) / statistics.median(baseline) - 1
        return gain if self.grid.config.objective.direction == "maximize" else -gain

    @property
    def grid_optimum(self) -> float | None:
        best = self.grid.best
        return best.value if best else None

    @property
    def baseline_value(self) -> float | None:
        baseline = self.grid.baseline
        return baseline.value if baseline else None

    def to_dict(self) -> dict[str, Any]:
        grid_best = self.grid.best
        return {
            "grid_job": self.grid.job.id,
            "tpe_job": self.tpe.job.id,
            "objective": self.grid.config.objective.label,
            "budget": self.tpe.config.trials,
            "baseline_value": self.baseline_value,
            "grid_optimum": self.grid_optimum,
            "grid_best_params": grid_best.params if grid_best else None,
            "tuned_vs_baseline": self.grid.improvement,
            "tpe_best": self.tpe.best.value if self.tpe.best else None,
            "tpe_best_params": self.tpe.best.params if self.tpe.best else None,
            "tolerance": self.tolerance,
            "tpe_curve": self.tpe_curve,
            "trials_to_tolerance": self.trials_to_tolerance,
            "trials_to_grid_best": self.trials_to_grid_best,
            "confirmation": self.confirmation,
            "confirmed_gain": self.confirmed_gain,
        }


def feasible_points(config: TuneConfig, executor: Executor) -> int:
    base = ModelProfile.model_validate(executor.baseline())
    need = config.lengths.context_need()
    space = config.space
    return sum(not space.violations(base, space.point(point), need) for point in space.grid())


def best_so_far(trials: list[TrialRecord], objective: Objective) -> list[float | None]:
    curve: list[float | None] = []
    best: float | None = None
    for trial in trials:
        if trial.kind == "search":
            if trial.feasible and objective.improves(trial.value, best):
                best = trial.value
            curve.append(best)
    return curve


def trials_to_reach(curve: list[float | None], target: float, objective: Objective, tolerance: float) -> int | None:
    for count, value in enumerate(curve, start=1):
        if value is None:
            continue
        close = (
            value >= target * (1 - tolerance)
            if objective.direction == "maximize"
            else value <= target * (1 + tolerance)
        )
        if close:
            return count
    return None


def trials_to_params(trials: list[TrialRecord], params: dict[str, Any]) -> int | None:
    search = [trial for trial in trials if trial.kind == "search"]
    return next((count for count, trial in enumerate(search, start=1) if trial.params == params), None)


async def compare_tpe_with_grid(
    config: TuneConfig,
    executor: Executor,
    store: TunerStore,
    *,
    bench_store: BenchStore | None = None,
    tolerance: float = 0.05,
    confirm_rounds: int = 2,
    listener: Any = None,
) -> Comparison:
    budget = feasible_points(config, executor)
    grid_job = TuningJob(
        replace(config, strategy="grid", trials=budget, baseline=True), executor, store, bench_store=bench_store
    )
    tpe_job = TuningJob(
        replace(config, strategy="tpe", trials=budget, baseline=False), executor, store, bench_store=bench_store
    )
    for job in (grid_job, tpe_job):
        if listener is not None:
            job.events.listen(listener)
    grid = await grid_job.run()
    tpe = await tpe_job.run()
    objective = config.objective
    curve = best_so_far(tpe.trials, objective)
    grid_best = grid.best
    reach = trials_to_reach(curve, grid_best.value, objective, tolerance) if grid_best and grid_best.value else None
    found = trials_to_params(tpe.trials, grid_best.params) if grid_best else None
    comparison = Comparison(grid, tpe, tolerance, curve, reach, found)
    if grid.baseline is not None and grid_best is not None and confirm_rounds > 0:
        contenders = {"baseline": grid.baseline.params, "tuned": grid_best.params}
        comparison.confirmation = await head_to_head(config, executor, contenders, confirm_rounds)
    return comparison


async def head_to_head(
    config: TuneConfig, executor: Executor, contenders: Mapping[str, Mapping[str, Any]], rounds: int
) -> dict[str, list[float | None]]:
    """Measure each parameter set ``rounds`` times, interleaved, so drifting load hits all of them alike."""
    values: dict[str, list[float | None]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, params in contenders.items():
            values[name].append(await measure(config, executor, params))
    return values


async def measure(config: TuneConfig, executor: Executor, params: Mapping[str, Any]) -> float | None:
    """One benchmark of ``params`` (outside any job): the objective's value, None if nothing succeeded."""
    endpoint = await executor.start({**config.space.fixed, **params})
    try:
        run = await run_benchmark(config.bench_config(endpoint), source="tuner", label="head-to-head")
    finally:
        await executor.stop()
    return config.objective.value(run.levels[0])


def describe_event(event: TuneEvent) -> str | None:
    """One line per finished trial, for logs."""
    trial = event.trial
    if event.kind != "trial_finished" or trial is None:
        return None
    value = f"{trial.value:.2f}" if trial.value is not None else "-"
    return f"{event.job_id} #{trial.number} {trial.kind} {trial.params} {trial.status} {value} {trial.reason or ''}"

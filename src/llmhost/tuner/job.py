"""A tuning job: the baseline (trial 0, the model's current profile), then trials suggested by the strategy, each
one a real engine started by the executor, warmed up, benchmarked at the target concurrency and stopped.

Persistence: every trial is written when it starts and when it ends, with the strategy state, so ``run()`` on
an interrupted job (cancelled task, killed process) re-runs the trial that was in flight and continues with the
strategy where it was; finished trials are never redone. A suggestion that repeats an evaluated point is
answered from the earlier result; one that violates a known constraint (or the executor's preflight) is told to
the strategy as infeasible; neither costs a trial.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import yaml

from llmhost.bench import cpu
from llmhost.bench.client import Api, Target
from llmhost.bench.runner import BenchConfig, BenchError, BenchEvent, run_benchmark
from llmhost.bench.store import BenchStore
from llmhost.bench.workload import LengthSpec, Level
from llmhost.config import ModelProfile
from llmhost.tuner.events import EventHub, TuneEvent
from llmhost.tuner.executor import Endpoint, Executor, TrialFailed
from llmhost.tuner.objective import Objective
from llmhost.tuner.records import JobRecord, JobStatus, TrialRecord
from llmhost.tuner.space import SearchSpace
from llmhost.tuner.store import TunerStore
from llmhost.tuner.strategies import STRATEGIES, Strategy, make_strategy, strategy_from_state

MAX_IDLE_SUGGESTIONS = 200  # repeated or ruled-out suggestions in a row before the search counts as exhausted
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TuneConfig:
    model: str
    space: SearchSpace
    strategy: str = "tpe"
    objective: Objective = field(default_factory=Objective)
    trials: int = 20  # search trials that run an engine (the baseline is extra)
    concurrency: int = 8
    requests: int = 32  # measured requests per trial
    warmup: int | None = None  # default: one per concurrent user
    lengths: LengthSpec = field(default_factory=lambda: LengthSpec.fixed(128, 64))
    seed: int = 0
    baseline: bool = True
    api: Api = "chat"
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.trials < 0 or self.concurrency < 1 or self.requests < 1:
            raise ValueError("trials must be >= 0, concurrency and requests >= 1")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}")

    def bench_config(self, endpoint: Endpoint) -> BenchConfig:
        return BenchConfig(
            target=Target(endpoint.base_url, endpoint.model, self.api),
            levels=(Level(concurrency=self.concurrency),),
            requests=self.requests,
            warmup=self.concurrency if self.warmup is None else self.warmup,
            lengths=self.lengths,
            slo=self.objective.slo,
            seed=self.seed,
            timeout=self.timeout,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "space": self.space.to_dict(),
            "strategy": self.strategy,
            "objective": self.objective.to_dict(),
            "trials": self.trials,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "warmup": self.warmup,
            "lengths": str(self.lengths),
            "seed": self.seed,
            "baseline": self.baseline,
            "api": self.api,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneConfig:
        values = dict(data)
        values["space"] = SearchSpace.from_dict(data["space"])
        values["objective"] = Objective.from_dict(data["objective"])
        values["lengths"] = LengthSpec.parse(data["lengths"])
        return cls(**values)


@dataclass(slots=True)
class JobSummary:
    job: JobRecord
    config: TuneConfig
    trials: list[TrialRecord]

    @property
    def baseline(self) -> TrialRecord | None:
        return next((trial for trial in self.trials if trial.kind == "baseline"), None)

    @property
    def best(self) -> TrialRecord | None:
        """The best feasible trial, the baseline included."""
        best: TrialRecord | None = None
        for trial in self.trials:
            if trial.feasible and self.config.objective.improves(trial.value, best.value if best else None):
                best = trial
        return best

    @property
    def nothing_to_apply(self) -> str | None:
        """Why the best trial is nothing to apply (None: it is a search trial with other values than today's)."""
        best, baseline = self.best, self.baseline
        if best is None:
            return "no trial succeeded within the constraints"
        if best.kind == "baseline":
            return "the current profile (trial 0) is the best"
        if baseline is not None and _key(best.params) == _key(baseline.params):
            return f"the best trial (#{best.number}) runs the current values"
        return None

    @property
    def beats_baseline(self) -> bool:
        """The best is new and better than the baseline (or there is no feasible baseline to compare with)."""
        baseline = self.baseline
        if self.nothing_to_apply is not None:
            return False
        return baseline is None or not baseline.feasible or (self.improvement or 0.0) > 0

    @property
    def improvement(self) -> float | None:
        """Relative gain of the best over the baseline (positive: better, whatever the direction)."""
        best, baseline = self.best, self.baseline
        if best is None or baseline is None or not baseline.value or best.value is None:
            return None
        gain = (best.value - baseline.value) / baseline.value
        return gain if self.config.objective.direction == "maximize" else -gain

    def best_profile(self) -> dict[str, Any] | None:
        """The parameters to apply: the space's fixed values and the best trial's."""
        best = self.best
        if best is None:
            return None
        chosen = {**self.config.space.fixed, **best.params}
        return _plain({name: value for name, value in chosen.items() if value is not None})

    def profile_snippet(self) -> str | None:
        profile = self.best_profile()
        if profile is None:
            return None
        return yaml.safe_dump({"models": {self.config.model: profile}}, sort_keys=False)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "job": self.job.to_dict(),
            "best_trial": best.number if best else None,
            "best_profile": self.best_profile(),
            "improvement": self.improvement,
            "trials": [trial.to_dict() for trial in self.trials],
        }


def _plain(value: Any) -> Any:
    """Tuples as lists, for YAML and JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def new_job_id() -> str:
    return f"tune-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def _key(params: dict[str, Any]) -> str:
    return json.dumps(_plain(params), sort_keys=True)


class TuningJob:
    def __init__(
        self,
        config: TuneConfig,
        executor: Executor,
        store: TunerStore,
        *,
        bench_store: BenchStore | None = None,
        job_id: str | None = None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.store = store
        self.bench_store = bench_store
        self.id = job_id or new_job_id()
        self.events = EventHub()
        self._stop_requested = False
        self._base = ModelProfile.model_validate(executor.baseline())

    @classmethod
    def resume(
        cls, job_id: str, executor: Executor, store: TunerStore, *, bench_store: BenchStore | None = None
    ) -> TuningJob:
        job = store.get_job(job_id)
        if job is None:
            raise KeyError(f"no tuning job {job_id}")
        return cls(TuneConfig.from_dict(job.config), executor, store, bench_store=bench_store, job_id=job_id)

    def request_stop(self) -> None:
        """Stop after the trial in flight, or at once when the task is also cancelled (status ``stopped``: not
        resumed at the next service start, though ``llmhost tune run --job-id`` still continues it)."""
        self._stop_requested = True

    def summary(self) -> JobSummary:
        job = self.store.get_job(self.id)
        assert job is not None
        return JobSummary(job, self.config, self.store.trials(self.id))

    # running -----------------------------------------------------------------------------------------------

    async def run(self) -> JobSummary:
        strategy = await self._open()
        self._emit("job_started")
        try:
            await self._run_trials(strategy)
        except asyncio.CancelledError:
            stopped = self._stop_requested  # a stop that cancelled the trial in flight, not a shutdown
            await self._db(self.store.set_status, self.id, "stopped" if stopped else "interrupted")
            self._emit("job_stopped" if stopped else "job_interrupted")
            raise
        except Exception as exc:
            await self._db(self.store.set_status, self.id, "failed", f"{type(exc).__name__}: {exc}")
            self._emit("job_failed", error=str(exc))
            raise
        status: JobStatus = "stopped" if self._stop_requested else "completed"
        await self._db(self.store.set_status, self.id, status)
        summary = await self._db(self.summary)
        self._emit("job_finished" if status == "completed" else "job_stopped", summary=summary.to_dict())
        return summary

    async def _open(self) -> Strategy:
        job = await self._db(self.store.get_job, self.id)
        if job is None:
            now = time.time()
            job = JobRecord(self.id, self.config.model, "pending", self.config.to_dict(), None, now, now)
            await self._db(self.store.create_job, job)
        await self._db(self.store.set_status, self.id, "running")
        if job.strategy_state is not None:
            return strategy_from_state(self.config.space, job.strategy_state)
        objective = self.config.objective
        return make_strategy(self.config.strategy, self.config.space, objective.direction, self.config.seed)

    async def _run_trials(self, strategy: Strategy) -> None:
        trials = await self._db(self.store.trials, self.id)
        for trial in trials:
            if trial.status == "running":  # in flight when the job was interrupted
                await self._execute(trial, strategy if trial.kind == "search" else None)
        numbers = {trial.number for trial in trials}
        if self.config.baseline and 0 not in numbers:
            current = {name: getattr(self._base, name) for name in self.config.space.names}
            await self._execute(TrialRecord(self.id, 0, "baseline", current, started_at=time.time()), None)
        await self._search(strategy)

    async def _search(self, strategy: Strategy) -> None:
        trials = await self._db(self.store.trials, self.id)
        evaluated = {_key(t.params): t for t in trials if t.kind == "search" and t.status != "running"}
        ruled_out: set[str] = set()
        searched = sum(t.kind == "search" for t in trials)
        number = max((t.number for t in trials), default=0) + 1
        idle = 0
        while searched < self.config.trials and not self._stop_requested and idle < MAX_IDLE_SUGGESTIONS:
            if len(evaluated) + len(ruled_out) >= self.config.space.size:
                break  # every point has an answer
            params = strategy.suggest()
            if params is None:
                break
            key = _key(params)
            if key in evaluated or key in ruled_out:
                idle += 1
                self._tell_again(strategy, params, evaluated.get(key))
                continue
            reasons = self._ruled_out(params)
            if reasons:
                idle += 1
                ruled_out.add(key)
                strategy.tell(params, None, {"known_constraint": 1.0})
                await self._db(self.store.save_state, self.id, strategy.state())
                self._emit("trial_skipped", params=_plain(params), reason="; ".join(reasons))
                continue
            idle = 0
            trial = TrialRecord(self.id, number, "search", params, started_at=time.time())
            await self._db(self.store.save_trial, trial, strategy.state())
            await self._execute(trial, strategy)
            evaluated[key] = trial
            searched += 1
            number += 1

    def _tell_again(self, strategy: Strategy, params: dict[str, Any], earlier: TrialRecord | None) -> None:
        if earlier is None or earlier.status != "complete":
            strategy.tell(params, None, {"known_constraint": 1.0} if earlier is None else {})
        else:
            strategy.tell(params, earlier.value, earlier.constraints)

    def _ruled_out(self, params: dict[str, Any]) -> list[str]:
        need = self.config.lengths.context_need()
        reasons = self.config.space.violations(self._base, params, need)
        preflight = self.executor.preflight({**self.config.space.fixed, **params}) if not reasons else None
        return [*reasons, preflight] if preflight else reasons

    async def _execute(self, trial: TrialRecord, strategy: Strategy | None) -> None:
        trial.started_at = time.time()
        self._emit("trial_started", trial)
        try:
            await self._measure(trial)
        except (TrialFailed, BenchError) as exc:
            trial.status = "failed"
            trial.reason = self.executor.crashed() or (exc.reason if isinstance(exc, TrialFailed) else str(exc))
        finally:
            trial.engine = trial.engine or self.executor.describe()
            await self.executor.stop()
        trial.finished_at = time.time()
        if strategy is not None:
            strategy.tell(trial.params, trial.value if trial.status == "complete" else None, trial.constraints)
        await self._db(self.store.save_trial, trial, strategy.state() if strategy else None)
        self._emit("trial_finished", trial)

    async def _measure(self, trial: TrialRecord) -> None:
        endpoint = await self.executor.start({**self.config.space.fixed, **trial.params})
        trial.engine = self.executor.describe()
        watched = [os.getpid(), *([trial.engine["pid"]] if trial.engine.get("pid") else [])]
        before = cpu.sample(watched)
        bench = await run_benchmark(
            self.config.bench_config(endpoint),
            self._progress(trial),
            label=f"{self.id} trial {trial.number}",
            source="tuner",
        )
        if len(watched) > 1:  # a local engine: other processes compete with it for the CPU
            trial.engine["other_cpu"] = round(cpu.other_share(before, cpu.sample(watched)), 3)
        if self.bench_store is not None:
            await self._db(self.bench_store.save, bench)
        metrics = bench.levels[0]
        trial.bench_run_id, trial.metrics = bench.id, metrics
        crash = self.executor.crashed()
        if crash or metrics.completed == 0:
            raise TrialFailed(crash or f"no request succeeded: {metrics.errors}")
        objective = self.config.objective
        value = objective.value(metrics)
        trial.value = value if value is None or math.isfinite(value) else None
        trial.constraints = objective.constraints(metrics)
        trial.status = "complete"

    def _progress(self, trial: TrialRecord) -> Callable[[BenchEvent], None]:
        def forward(event: BenchEvent) -> None:
            self.events.emit(TuneEvent("trial_progress", self.id, trial, bench=event))

        return forward

    def _emit(self, kind: Any, trial: TrialRecord | None = None, **data: Any) -> None:
        self.events.emit(TuneEvent(kind, self.id, replace(trial) if trial else None, data))

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

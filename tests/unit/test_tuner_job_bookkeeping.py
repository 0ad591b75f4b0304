"""Tuning-job bookkeeping without engines: failures recorded with their reason, ruled-out points skipped,
and an interrupted job resuming without redoing finished trials. (The real engine runs are in
tests/integration/test_tuner_real_job.py.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from llmhost.bench.workload import LengthSpec
from llmhost.config import ModelProfile
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.executor import Endpoint, TrialFailed
from llmhost.tuner.job import JobSummary, TuneConfig, TuningJob
from llmhost.tuner.space import SearchSpace
from llmhost.tuner.store import TunerStore


class RefusingExecutor:
    """Every engine fails to start (as llama-server does with a flag it rejects); ``hold`` blocks instead."""

    name = "refusing"
    model = "m"

    def __init__(self, hold: Mapping[str, Any] | None = None) -> None:
        self.starts: Counter[str] = Counter()
        self.hold = dict(hold) if hold else None
        self.held = asyncio.Event()

    def baseline(self) -> dict[str, Any]:
        return ModelProfile(ctx=1024, parallel=1).model_dump(exclude={"path"})

    def preflight(self, params: Mapping[str, Any]) -> str | None:
        return "needs 9000 MiB, the budget is 100 MiB" if params.get("parallel") == 8 else None

    async def start(self, params: Mapping[str, Any]) -> Endpoint:
        self.starts[repr(sorted(params.items()))] += 1
        if self.hold is not None and all(params.get(k) == v for k, v in self.hold.items()):
            self.held.set()
            await asyncio.Event().wait()
        raise TrialFailed(f"bad flag for parallel={params.get('parallel')}")

    def crashed(self) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name}

    async def stop(self) -> None:
        return None


def config(strategy: str = "grid", trials: int = 10) -> TuneConfig:
    space = SearchSpace.from_dict({"parameters": {"parallel": [1, 2, 8], "batch": [64, 128]}, "fixed": {"threads": 1}})
    return TuneConfig(
        "m", space, strategy=strategy, trials=trials, concurrency=2, requests=2, lengths=LengthSpec.fixed(8, 4)
    )


async def test_failed_trials_are_recorded_and_ruled_out_points_skipped(tmp_path: Path) -> None:
    store = TunerStore(tmp_path / "bench.db")
    executor = RefusingExecutor()
    job = TuningJob(config(), executor, store, job_id="j1")
    events: list[TuneEvent] = []
    job.events.listen(events.append)
    summary = await job.run()
    assert summary.job.status == "completed"
    assert [t.number for t in summary.trials] == [0, 1, 2, 3, 4]  # baseline + the 4 points that may run
    assert all(t.status == "failed" for t in summary.trials)
    assert summary.trials[1].reason == "bad flag for parallel=1"
    assert summary.trials[0].kind == "baseline" and summary.trials[0].params == {"parallel": 1, "batch": None}
    skipped = [e for e in events if e.kind == "trial_skipped"]
    assert len(skipped) == 2 and "9000 MiB" in skipped[0].data["reason"]
    assert summary.best is None and summary.profile_snippet() is None
    assert sum(executor.starts.values()) == 5
    assert all("('threads', 1)" in key for key in executor.starts)  # fixed values reach every trial
    state = store.get_job("j1").strategy_state  # type: ignore[union-attr]
    assert state is not None and len(state["history"]) == 6  # every point told, failures and skips included
    assert {e.kind for e in events} >= {"job_started", "trial_started", "trial_finished", "job_finished"}
    store.close()


async def test_tpe_budget_counts_engine_runs_only(tmp_path: Path) -> None:
    store = TunerStore(tmp_path / "bench.db")
    summary = await TuningJob(config("tpe", trials=3), RefusingExecutor(), store, job_id="j2").run()
    assert sum(t.kind == "search" for t in summary.trials) == 3
    summary = await TuningJob(config("tpe", trials=50), RefusingExecutor(), store, job_id="j3").run()
    assert sum(t.kind == "search" for t in summary.trials) == 4  # the space has 4 points that may run
    store.close()


async def test_interrupted_job_resumes_without_redoing_trials(tmp_path: Path) -> None:
    store = TunerStore(tmp_path / "bench.db")
    first = RefusingExecutor(hold={"parallel": 2, "batch": 64})
    job = TuningJob(config(), first, store, job_id="j4")
    task = asyncio.create_task(job.run())
    await asyncio.wait_for(first.held.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.get_job("j4").status == "interrupted"  # type: ignore[union-attr]
    trials = store.trials("j4")
    assert [(t.number, t.status) for t in trials] == [(0, "failed"), (1, "failed"), (2, "failed"), (3, "running")]

    second = RefusingExecutor()
    summary: JobSummary = await TuningJob.resume("j4", second, store).run()
    assert summary.job.status == "completed"
    assert [(t.number, t.status) for t in summary.trials] == [(n, "failed") for n in range(5)]
    assert summary.trials[3].params == {"parallel": 2, "batch": 64}
    assert sum(second.starts.values()) == 2  # the interrupted trial and the one never started
    assert store.unfinished_jobs() == []
    store.close()

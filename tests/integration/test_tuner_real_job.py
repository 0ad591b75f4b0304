"""A real tuning job on the default model: engines started through llmhost's supervisor, a failed trial with
its reason, an interruption mid-trial and a resume that does not redo finished trials, and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import DEFAULT_MODEL, is_alive, run_cli, write_config
from llmhost.bench.db import Database
from llmhost.bench.store import BenchStore
from llmhost.bench.workload import LengthSpec
from llmhost.config import load_settings
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.executor import Endpoint, LocalLlamaServerExecutor
from llmhost.tuner.job import TuneConfig, TuningJob
from llmhost.tuner.space import SearchSpace
from llmhost.tuner.store import TunerStore

pytestmark = pytest.mark.integration

SMALL = {"parameters": {"parallel": [1, 2], "batch": [64, 256]}, "fixed": {"ctx": 512, "threads": 1}}


class CountingExecutor:
    """The real local executor, counting the engines it starts per parameter set."""

    def __init__(self, inner: LocalLlamaServerExecutor) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.starts: Counter[str] = Counter()

    def baseline(self) -> dict[str, Any]:
        return self.inner.baseline()

    def preflight(self, params: Mapping[str, Any]) -> str | None:
        return self.inner.preflight(params)

    async def start(self, params: Mapping[str, Any]) -> Endpoint:
        self.starts[json.dumps(dict(params), sort_keys=True)] += 1
        return await self.inner.start(params)

    def crashed(self) -> str | None:
        return self.inner.crashed()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def stop(self) -> None:
        await self.inner.stop()


def executor(tmp_path: Path) -> CountingExecutor:
    settings = load_settings(write_config(tmp_path, tmp_path / "data"))
    return CountingExecutor(LocalLlamaServerExecutor.from_settings(settings, DEFAULT_MODEL))


def tune_config(space: dict[str, Any], **overrides: Any) -> TuneConfig:
    values: dict[str, Any] = {
        "model": DEFAULT_MODEL,
        "space": SearchSpace.from_dict(space),
        "strategy": "tpe",
        "trials": 4,
        "concurrency": 2,
        "requests": 4,
        "warmup": 1,
        "lengths": LengthSpec.fixed(32, 16),
    }
    return TuneConfig(**{**values, **overrides})


def engine_alive(executor: CountingExecutor) -> bool:
    """The executor's last llama-server still runs (other tests' engines do not count)."""
    engine = executor.inner.engine
    pid = engine.process.pid if engine is not None and engine.process is not None else None
    if pid is None:
        return False
    try:
        return is_alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


async def test_interrupted_job_resumes_and_reports_the_best(tmp_path: Path) -> None:
    database = Database(tmp_path / "bench.db")
    store, bench_store = TunerStore(database), BenchStore(database)
    first = executor(tmp_path)
    job = TuningJob(tune_config(SMALL), first, store, bench_store=bench_store, job_id="resume-me")
    mid_trial = asyncio.Event()

    def watch(event: TuneEvent) -> None:
        bench = event.bench
        if event.trial and event.trial.number == 2 and bench and bench.kind == "request_done":
            mid_trial.set()  # trial 2's engine is serving its benchmark

    job.events.listen(watch)
    task = asyncio.create_task(job.run())
    await asyncio.wait_for(mid_trial.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not engine_alive(first), "the trial engine survived the cancellation"
    assert store.get_job("resume-me").status == "interrupted"  # type: ignore[union-attr]
    before = {t.number: t for t in store.trials("resume-me")}
    assert [(n, t.status) for n, t in before.items()] == [(0, "complete"), (1, "complete"), (2, "running")]

    second = executor(tmp_path)
    summary = await TuningJob.resume("resume-me", second, store, bench_store=bench_store).run()
    trials = summary.trials
    assert summary.job.status == "completed"
    assert [(t.number, t.kind, t.status) for t in trials] == [(0, "baseline", "complete")] + [
        (n, "search", "complete") for n in range(1, 5)
    ]
    for number in (0, 1):  # finished before the interruption: kept as they were
        assert trials[number].started_at == before[number].started_at
        assert trials[number].value == before[number].value
    assert trials[2].params == before[2].params
    assert sum(second.starts.values()) == 3  # trial 2 again, then 3 and 4; nothing of 0 and 1 rerun
    points = {json.dumps(t.params, sort_keys=True) for t in trials[1:]}
    assert len(points) == 4  # TPE covered the whole space without repeating a point
    for trial in trials:
        assert trial.metrics is not None and trial.metrics.completed == 4 and trial.value
        assert trial.engine["argv"][trial.engine["argv"].index("--threads") + 1] == "1"
        assert 0.0 <= trial.engine["other_cpu"] <= 1.0
        assert bench_store.get_run(trial.bench_run_id or "") is not None
    best = summary.best
    assert best is not None and best.value == max(t.value or 0 for t in trials)
    snippet = summary.profile_snippet()
    assert snippet is not None and f"{DEFAULT_MODEL}:" in snippet and "parallel:" in snippet
    print("\n" + "\n".join(f"#{t.number} {t.params} {t.value:.1f} tok/s" for t in trials if t.value))
    print(f"best #{best.number}, {summary.improvement:+.1%} over the baseline\n{snippet}")
    database.close()


async def test_failed_trial_is_recorded_with_its_reason(tmp_path: Path) -> None:
    space = {
        "parameters": {"cache_type_v": ["q4_0"]},
        "fixed": {"flash_attn": "off", "ctx": 512, "threads": 1},
        "constraints": ["ctx_fits_workload"],  # let the engine find out that this cannot work
    }
    store = TunerStore(tmp_path / "bench.db")
    summary = await TuningJob(tune_config(space, trials=1, baseline=False), executor(tmp_path), store).run()
    (trial,) = summary.trials
    assert trial.status == "failed" and not trial.feasible
    assert "quantized V cache requires flash_attn" in (trial.reason or "")
    assert "exited with code" in (trial.reason or "")
    assert "--cache-type-v" in trial.engine["argv"]
    state = store.get_job(summary.job.id).strategy_state  # type: ignore[union-attr]
    assert state is not None and state["history"][0]["constraints"] == {"failed": 1.0}
    store.close()


def test_tune_cli(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "data")
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  parallel: [2]\nfixed:\n  ctx: 512\n")
    common = ["--config", str(config), "--data-dir", str(tmp_path / "db")]
    result = run_cli(
        "tune", "run", DEFAULT_MODEL, "--space", str(space), "--set", "threads=1", "--strategy", "grid",
        "--trials", "1", "--concurrency", "2", "--requests", "2", "--warmup", "1", "--input", "32", "--output", "8",
        "--job-id", "cli-job", "--json", str(tmp_path / "summary.json"), *common,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "profile to apply" in result.stdout and "parallel: 2" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["complete", "complete"]
    shown = run_cli("tune", "show", "cli-job", "--json", *common)
    assert json.loads(shown.stdout)["best_profile"] == summary["best_profile"]
    listed = run_cli("tune", "list", *common)
    assert "cli-job" in listed.stdout and "completed" in listed.stdout
    again = run_cli("tune", "run", DEFAULT_MODEL, "--job-id", "cli-job", *common)  # finished: nothing to redo
    assert again.returncode == 0 and "resuming cli-job (completed)" in again.stdout

"""Tuning inside the service, without starting engines: trials over the scheduler's free memory are refused with
the reason (no trial spent), reservations shrink what the scheduler may place, unfinished jobs resume at start
(and ones that cannot are marked failed), and stop/apply refuse what they cannot do. Real catalog (the default
model's GGUF), real SQLite; the engine runs are in tests/integration/test_tuning_service.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import DEFAULT_MODEL, write_config
from llmhost.bench.workload import LengthSpec
from llmhost.config import Settings, load_settings
from llmhost.live_config import LiveConfig
from llmhost.service import Service
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.executor import ServiceExecutor
from llmhost.tuner.job import TuneConfig, TuningJob
from llmhost.tuner.manager import JobConflict, JobNotFound, TuningManager
from llmhost.tuner.records import JobRecord
from llmhost.tuner.space import SearchSpace
from llmhost.tuner.store import TunerStore

OVER_BUDGET = {"parameters": {"parallel": [16, 32]}}  # far above the budget set below: no engine ever starts


def settings_with(tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(write_config(tmp_path / "config", tmp_path / "data", **extra))


async def scanned(settings: Settings) -> Service:
    service = Service(settings)
    await asyncio.to_thread(service.catalog.scan)
    return service


def host_need(service: Service, params: dict[str, Any]) -> float:
    return ServiceExecutor.from_service(service, DEFAULT_MODEL, owner="probe").charges(params)["host"]


async def budget_between(tmp_path: Path) -> Settings:
    """Settings whose host budget fits one slot of the default model but not eight."""
    probe = await scanned(settings_with(tmp_path / "probe"))
    small, big = host_need(probe, {"parallel": 1}), host_need(probe, {"parallel": 8})
    assert small < big
    return settings_with(tmp_path, scheduler={"host_memory_mib": (small + big) / 2, "reserve_mib": 0})


def refused_config(trials: int = 2) -> TuneConfig:
    space = SearchSpace.from_dict(OVER_BUDGET)
    return TuneConfig(
        DEFAULT_MODEL,
        space,
        "grid",
        trials=trials,
        concurrency=1,
        requests=1,
        lengths=LengthSpec.fixed(8, 4),
        baseline=False,
    )


async def test_preflight_refuses_what_the_scheduler_could_not_place(tmp_path: Path) -> None:
    service = await scanned(await budget_between(tmp_path))
    executor = ServiceExecutor.from_service(service, "default", owner="tune:t1")
    assert executor.model == DEFAULT_MODEL  # "default" is the configured default model
    assert executor.preflight({"parallel": 1}) is None
    reason = executor.preflight({"parallel": 8})
    assert reason is not None and reason.startswith("host: needs about") and "free beside the serving engines" in reason

    free, small = service.scheduler.available()["host"], host_need(service, {"parallel": 1})
    service.scheduler.reserve("tune:t1", executor.charges({"parallel": 1}))
    assert service.scheduler.available()["host"] == pytest.approx(free - small)
    assert free - small < small and executor.preflight({"parallel": 1}) is not None  # no room for a second one
    service.scheduler.release("tune:t1")
    assert service.scheduler.available()["host"] == pytest.approx(free)


async def test_refused_points_cost_no_trial_and_start_no_engine(tmp_path: Path) -> None:
    service = await scanned(await budget_between(tmp_path))
    executor = ServiceExecutor.from_service(service, DEFAULT_MODEL, owner="tune:t2")
    store = TunerStore(tmp_path / "bench.db")
    job = TuningJob(refused_config(), executor, store, job_id="t2")
    events: list[TuneEvent] = []
    job.events.listen(events.append)
    summary = await job.run()
    assert summary.job.status == "completed" and summary.trials == []
    skipped = [event for event in events if event.kind == "trial_skipped"]
    assert [event.data["params"]["parallel"] for event in skipped] == [16, 32]
    assert all("host: needs about" in event.data["reason"] for event in skipped)
    assert executor.engine is None and service.scheduler.reserved == {}
    assert summary.nothing_to_apply == "no trial succeeded within the constraints"
    store.close()


def record(job_id: str, model: str, status: str, config: TuneConfig, created: float) -> JobRecord:
    return JobRecord(job_id, model, status, config.to_dict(), None, created, created)  # type: ignore[arg-type]


async def test_start_resumes_unfinished_jobs_and_marks_the_unresumable_failed(tmp_path: Path) -> None:
    settings = await budget_between(tmp_path)
    store = TunerStore(settings.data_dir / "bench.db")
    now = time.time()
    store.create_job(record("was-running", DEFAULT_MODEL, "running", refused_config(), now))
    store.create_job(record("was-queued", DEFAULT_MODEL, "pending", refused_config(), now + 1))
    store.create_job(record("gone-model", "no-such-model", "interrupted", refused_config(), now + 2))
    store.create_job(record("user-stopped", DEFAULT_MODEL, "stopped", refused_config(), now + 3))
    store.close()

    service = await scanned(settings)
    manager = TuningManager(service, LiveConfig(service, None, {}))
    await manager.start()
    assert sorted(manager.jobs) == ["was-queued", "was-running"]
    for _ in range(200):
        if not manager.jobs:
            break
        await asyncio.sleep(0.05)
    statuses = {
        job_id: (await manager.record(job_id)).status
        for job_id in ("was-running", "was-queued", "gone-model", "user-stopped")
    }
    assert statuses == {
        "was-running": "completed",
        "was-queued": "completed",
        "gone-model": "failed",
        "user-stopped": "stopped",
    }
    assert "not resumed" in ((await manager.record("gone-model")).error or "")

    with pytest.raises(JobNotFound):
        await manager.stop_job("nope")
    with pytest.raises(JobConflict, match="not running"):
        await manager.stop_job("was-running")
    await manager.stop()


async def test_stop_ends_a_queued_job_and_shutdown_leaves_a_running_one_resumable(tmp_path: Path) -> None:
    settings = await budget_between(tmp_path)
    service = await scanned(settings)
    manager = TuningManager(service, LiveConfig(service, None, {}))
    await manager.start()
    async with manager._turn:  # another job holds the turn: the next two wait (pending)
        first = await manager.submit(refused_config(), manager.executor_for("default"))
        second = await manager.submit(refused_config(), manager.executor_for(DEFAULT_MODEL))
        await asyncio.sleep(0.05)
        assert (await manager.record(first.id)).status == "pending" and manager.running(first.id)
        stopped = await manager.stop_job(first.id)
        assert stopped.status == "stopped" and not manager.running(first.id)
        await manager.stop()  # the service stops while the second still waits for its turn
    store = TunerStore(settings.data_dir / "bench.db")
    assert [job.id for job in store.unfinished_jobs()] == [second.id]  # resumed at the next start
    store.close()

"""Tuning jobs run inside the service: a registry of jobs, resumed at start and stopped at shutdown.

Jobs take turns (one at a time: two jobs' trials would measure each other's load). A job waiting for its turn
is ``pending``; every job's record is in ``bench.db`` from the moment it is submitted, so a job the service
was running or had queued when it stopped (``running``, ``interrupted``, ``pending``) resumes at the next start
without redoing its finished trials. A job stopped on request (``stopped``) is not resumed.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from llmhost.bench.db import DB_FILE, Database
from llmhost.bench.store import BenchStore
from llmhost.tuner.executor import ServiceExecutor, TrialFailed
from llmhost.tuner.job import JobSummary, TuneConfig, TuningJob, new_job_id
from llmhost.tuner.records import JobRecord
from llmhost.tuner.store import TunerStore
from llmhost.types import LlmhostError

if TYPE_CHECKING:
    from llmhost.live_config import LiveConfig
    from llmhost.service import Service

log = structlog.get_logger(__name__)

STOP_WAIT = 30.0  # seconds a shutdown waits for the trial engines to stop


class JobNotFound(LlmhostError):
    status = 404
    kind = "not_found"


class JobConflict(LlmhostError):
    status = 409
    kind = "invalid_request"


class TuningManager:
    def __init__(self, service: Service, live: LiveConfig) -> None:
        self.service = service
        self.live = live
        self.jobs: dict[str, TuningJob] = {}  # submitted or resumed, not yet ended
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._turn = asyncio.Lock()
        self._store: TunerStore | None = None
        self._bench: BenchStore | None = None

    # the stores ------------------------------------------------------------------------------------------

    @property
    def store(self) -> TunerStore:
        if self._store is None:
            self._open_stores()
        assert self._store is not None
        return self._store

    @property
    def bench_store(self) -> BenchStore:
        if self._bench is None:
            self._open_stores()
        if self._bench is None:
            raise JobConflict("the tuner is not started")
        return self._bench

    async def opened(self) -> None:
        """Open bench.db (creating it) off the event loop, once: the stores' properties then never touch disk."""
        if self._store is None:
            await asyncio.to_thread(self._open_stores)

    def _open_stores(self) -> None:
        database = Database(self.service.settings.data_dir / DB_FILE)
        self._store, self._bench = TunerStore(database), BenchStore(database)

    # lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the jobs a previous run of the service left unfinished, oldest first. Without a bench.db no job
        was ever stored: the file is made by the first job or benchmark, not by every start."""
        if not await asyncio.to_thread((self.service.settings.data_dir / DB_FILE).exists):
            return
        await asyncio.to_thread(self._open_stores)
        unfinished = await asyncio.to_thread(self.store.unfinished_jobs)
        for record in sorted(unfinished, key=lambda job: job.created_at):
            try:
                executor = self._executor(record.model, record.id)
                job = TuningJob.resume(record.id, executor, self.store, bench_store=self.bench_store)
            except (LlmhostError, TrialFailed, KeyError, ValueError) as exc:
                reason = getattr(exc, "message", None) or getattr(exc, "reason", None) or str(exc)
                log.warning("tuning job not resumed", job=record.id, error=reason)
                await asyncio.to_thread(self.store.set_status, record.id, "failed", f"not resumed: {reason}")
                continue
            log.info("resuming tuning job", job=record.id, status=record.status)
            self._launch(job)

    async def stop(self) -> None:
        """Interrupt running jobs (their trial engines stop) so that the next start resumes them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_WAIT)
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = self._bench = None

    # jobs ------------------------------------------------------------------------------------------------

    def _executor(self, model: str, job_id: str) -> ServiceExecutor:
        return ServiceExecutor.from_service(self.service, model, owner=f"tune:{job_id}")

    def executor_for(self, model: str) -> ServiceExecutor:
        """The executor a new job on ``model`` would use (resolves ``default``; raises ModelNotFound)."""
        return self._executor(model, new_job_id())

    async def submit(self, config: TuneConfig, executor: ServiceExecutor) -> TuningJob:
        """Record the job (``pending``) and run it when its turn comes."""
        await self.opened()
        job_id = executor.owner.removeprefix("tune:")
        job = TuningJob(config, executor, self.store, bench_store=self.bench_store, job_id=job_id)
        now = time.time()
        record = JobRecord(job.id, config.model, "pending", config.to_dict(), None, now, now)
        await asyncio.to_thread(self.store.create_job, record)
        self._launch(job)
        return job

    def _launch(self, job: TuningJob) -> None:
        self.jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=f"tuning-{job.id}")

    async def _run(self, job: TuningJob) -> None:
        try:
            async with self._turn:
                await job.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded as failed by the job; the service goes on
            log.warning("tuning job failed", job=job.id, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.jobs.pop(job.id, None)
            self._tasks.pop(job.id, None)

    def running(self, job_id: str) -> bool:
        return job_id in self._tasks

    async def stop_job(self, job_id: str) -> JobRecord:
        """Stop a job now: its trial engine stops, finished trials stay (``stopped``, not resumed at start)."""
        await self.opened()
        record = await self.record(job_id)
        task, job = self._tasks.get(job_id), self.jobs.get(job_id)
        if task is None or job is None:
            raise JobConflict(f"tuning job {job_id} is not running (it is {record.status})")
        job.request_stop()
        task.cancel()
        await asyncio.wait([task], timeout=STOP_WAIT)
        record = await self.record(job_id)
        if record.status in ("pending", "interrupted"):  # stopped before its turn came
            await asyncio.to_thread(self.store.set_status, job_id, "stopped")
            record = await self.record(job_id)
        return record

    async def record(self, job_id: str) -> JobRecord:
        await self.opened()
        record = await asyncio.to_thread(self.store.get_job, job_id)
        if record is None:
            raise JobNotFound(f"no tuning job {job_id}", code="job_not_found")
        return record

    async def summary(self, job_id: str) -> JobSummary:
        await self.opened()
        record = await self.record(job_id)
        trials = await asyncio.to_thread(self.store.trials, job_id)
        return JobSummary(record, TuneConfig.from_dict(record.config), trials)

    async def summaries(self, limit: int = 50) -> list[JobSummary]:
        await self.opened()

        def load() -> list[JobSummary]:
            records = self.store.list_jobs(limit=limit)
            return [JobSummary(r, TuneConfig.from_dict(r.config), self.store.trials(r.id)) for r in records]

        return await asyncio.to_thread(load)

"""Admin routes for benchmark runs and tuning jobs: start, follow (SSE), stop and apply jobs run in the service;
read stored benchmark runs for the dashboard's charts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response, StreamingResponse

from llmhost.api.admin import _who as who_asked  # the key's name (or the client's address) for the history
from llmhost.api.common import STREAM_HEADERS, read_json
from llmhost.bench.metrics import Slo
from llmhost.bench.store import BenchStore
from llmhost.bench.workload import LengthSpec
from llmhost.live_config import LiveConfig, redact_change
from llmhost.tuner.apply import merged_document
from llmhost.tuner.events import TuneEvent
from llmhost.tuner.importance import param_importances
from llmhost.tuner.job import JobSummary, TuneConfig
from llmhost.tuner.manager import JobConflict, TuningManager
from llmhost.tuner.objective import Objective
from llmhost.tuner.space import SpaceError, build_space
from llmhost.types import InvalidRequest, LlmhostError

router = APIRouter(prefix="/admin", include_in_schema=False)
KEEPALIVE = 15.0  # seconds between comments on a quiet event stream
END_EVENTS = ("job_finished", "job_stopped", "job_interrupted", "job_failed")


class RunNotFound(LlmhostError):
    status = 404
    kind = "not_found"


class JobRequest(BaseModel):
    """The body of ``POST /admin/tune/jobs``: what ``llmhost tune run`` takes as options."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="catalog name or alias; 'default' for the default model")
    strategy: Literal["tpe", "grid", "random"] = "tpe"
    trials: int = Field(20, ge=0, le=1000, description="search trials (the baseline runs in addition)")
    concurrency: int = Field(8, ge=1, le=1024)
    requests: int = Field(32, ge=1, le=100_000, description="measured requests per trial")
    warmup: int | None = Field(None, ge=0, le=10_000)
    objective: str = "throughput"
    statistic: str = "p99"
    slo_ttft_ms: float | None = Field(None, gt=0)
    slo_tpot_ms: float | None = Field(None, gt=0)
    slo_e2e_ms: float | None = Field(None, gt=0)
    max_error_rate: float = Field(0.05, ge=0, le=1)
    preset: str | None = None
    space: dict[str, Any] | None = Field(None, description="a search space as in the YAML form")
    fixed: dict[str, Any] = Field(default_factory=dict)
    input_tokens: int = Field(128, ge=1, le=1_000_000)
    output_tokens: int = Field(64, ge=1, le=1_000_000)
    lengths: str | None = Field(None, description="D(in,out), N(..)/(..) or U(..)/(..)")
    seed: int = 0
    baseline: bool = True
    api: Literal["chat", "completions"] = "chat"
    timeout: float = Field(120.0, gt=0, le=3600)

    def tune_config(self, model: str) -> TuneConfig:
        """Raises ValueError (SpaceError included) with a message for the client."""
        fixed = LengthSpec.fixed(self.input_tokens, self.output_tokens)
        lengths = LengthSpec.parse(self.lengths) if self.lengths else fixed
        slo = Slo(self.slo_ttft_ms, self.slo_tpot_ms, self.slo_e2e_ms)
        objective = Objective(self.objective, self.statistic, slo, self.statistic, self.max_error_rate)
        return TuneConfig(
            model=model,
            space=build_space(self.space, self.preset, self.fixed),
            strategy=self.strategy,
            objective=objective,
            trials=self.trials,
            concurrency=self.concurrency,
            requests=self.requests,
            warmup=self.warmup,
            lengths=lengths,
            seed=self.seed,
            baseline=self.baseline,
            api=self.api,
            timeout=self.timeout,
        )


def _manager(request: Request) -> TuningManager:
    manager: TuningManager = request.app.state.tuning
    return manager


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_job_request(body: object) -> JobRequest:
    if not isinstance(body, dict):
        raise InvalidRequest('send a JSON object such as {"model": "default", "trials": 20, "concurrency": 8}')
    try:
        return JobRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        raise InvalidRequest(validation_message(exc), param=str(first[0]) if first else None) from None


def job_view(summary: JobSummary, running: bool) -> dict[str, Any]:
    """A job as the jobs list shows it."""
    best, baseline = summary.best, summary.baseline
    return {
        **summary.job.to_dict(),
        "running": running,
        "objective": summary.config.objective.label,
        "direction": summary.config.objective.direction,
        "trials_done": sum(trial.status != "running" for trial in summary.trials),
        "trials_planned": summary.config.trials + int(summary.config.baseline),
        "best_value": best.value if best else None,
        "baseline_value": baseline.value if baseline else None,
        "improvement": summary.improvement,
    }


def job_detail(summary: JobSummary, running: bool) -> dict[str, Any]:
    """A job with its trials, best and baseline, and which parameters mattered."""
    best, baseline = summary.best, summary.baseline
    return {
        **summary.to_dict(),
        **job_view(summary, running),
        "job": summary.job.to_dict(),
        "parameters": summary.config.space.names,
        "baseline_trial": baseline.number if baseline else None,
        "best_params": best.params if best else None,
        "importance": param_importances(summary),
        "snippet": summary.profile_snippet(),
        "nothing_to_apply": summary.nothing_to_apply,
    }


# tuning jobs ---------------------------------------------------------------------------------------------


@router.get("/tune/jobs")
async def list_jobs(request: Request) -> dict[str, Any]:
    manager = _manager(request)
    summaries = await manager.summaries()
    return {"jobs": [job_view(summary, manager.running(summary.job.id)) for summary in summaries]}


@router.post("/tune/jobs")
async def start_job(request: Request) -> dict[str, Any]:
    manager = _manager(request)
    job_request = parse_job_request(await read_json(request))
    executor = manager.executor_for(job_request.model)  # ModelNotFound: a 404 naming the model
    try:
        config = job_request.tune_config(executor.model)
    except (ValueError, SpaceError) as exc:
        raise InvalidRequest(str(exc)) from None
    job = await manager.submit(config, executor)
    return job_view(await manager.summary(job.id), manager.running(job.id))


@router.get("/tune/jobs/{job_id}")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    manager = _manager(request)
    summary = await manager.summary(job_id)
    return await asyncio.to_thread(job_detail, summary, manager.running(job_id))  # fANOVA takes a moment


@router.post("/tune/jobs/{job_id}/stop")
async def stop_job(request: Request, job_id: str) -> dict[str, Any]:
    manager = _manager(request)
    record = await manager.stop_job(job_id)
    return job_view(await manager.summary(record.id), manager.running(job_id))


@router.post("/tune/jobs/{job_id}/apply")
async def apply_job(request: Request, job_id: str) -> dict[str, Any]:
    """Merge the best trial's profile into ``models[<model>]`` through live configuration."""
    manager = _manager(request)
    summary = await manager.summary(job_id)
    if manager.running(job_id):
        raise JobConflict(f"tuning job {job_id} is still running: wait for it or stop it first")
    best, profile, reason = summary.best, summary.best_profile(), summary.nothing_to_apply
    if best is None or profile is None or reason is not None:
        raise JobConflict(f"tuning job {job_id}: nothing to apply: {reason}", code="nothing_to_apply")
    service = manager.service
    entry = service.catalog.get(summary.job.model)
    live: LiveConfig = request.app.state.live
    document = merged_document(live.document(), entry.name, entry.aliases, profile)
    change = await live.apply(document, who=who_asked(request))
    return {"applied": profile, "model": entry.name, "trial": best.number, "change": redact_change(asdict(change))}


@router.get("/tune/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str) -> Response:
    """The job's events as SSE: a ``snapshot`` (its summary) first, then each event; ends when the job ends, the
    client leaves or the service stops."""
    manager = _manager(request)
    stopping: asyncio.Event = request.app.state.stopping
    job = manager.jobs.get(job_id)
    queue = job.events.subscribe() if job is not None else None
    summary = await manager.summary(job_id)
    snapshot = {"kind": "snapshot", "job_id": job_id, **job_view(summary, queue is not None)}
    snapshot["trials"] = [trial.to_dict() for trial in summary.trials]

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield _sse(snapshot)
            if queue is None:
                return
            while not stopping.is_set():
                event = await _next_event(queue, stopping)
                if event is None:
                    if not manager.running(job_id):  # it ended before this stream subscribed
                        return
                    yield b": keep-alive\n\n"
                    continue
                yield _sse(event.to_dict())
                if event.kind in END_EVENTS:
                    return
        finally:
            if job is not None and queue is not None:
                job.events.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=STREAM_HEADERS)


async def _next_event(queue: asyncio.Queue[TuneEvent], stopping: asyncio.Event) -> TuneEvent | None:
    """The next event, or None after KEEPALIVE seconds or when the service starts stopping."""
    getter = asyncio.ensure_future(queue.get())
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({getter, waiter}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return None


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n\n"


# benchmark runs ------------------------------------------------------------------------------------------


async def _bench(request: Request) -> BenchStore:
    manager = _manager(request)
    await manager.opened()
    return manager.bench_store


@router.get("/bench/runs")
async def list_runs(request: Request) -> dict[str, Any]:
    query = request.query_params
    try:
        limit = min(max(int(query.get("limit", "50")), 1), 500)
    except ValueError:
        raise InvalidRequest("limit must be a whole number", param="limit") from None
    runs = await asyncio.to_thread((await _bench(request)).list_runs, limit=limit, source=query.get("source"))
    return {"runs": [run.to_dict() for run in runs]}


@router.get("/bench/runs/{run_id}")
async def get_run(request: Request, run_id: str) -> dict[str, Any]:
    run = await asyncio.to_thread((await _bench(request)).get_run, run_id)
    if run is None:
        raise RunNotFound(f"no benchmark run {run_id}", code="run_not_found")
    return run.to_dict()

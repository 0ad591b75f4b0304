"""Telemetry routes: Prometheus ``/metrics``, JSON views for the dashboard and the CLI, live progress and an
SSE stream at 1 Hz. Every figure is measured; what is not known is null, never 0."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response, StreamingResponse

from llmhost.api.common import STREAM_HEADERS
from llmhost.api.openai import ORJSONResponse
from llmhost.engines.scheduler import ModelSlot
from llmhost.service import Service
from llmhost.telemetry.prometheus import EngineInfo
from llmhost.telemetry.requests import RequestRecord, RequestState
from llmhost.telemetry.series import HELP
from llmhost.telemetry.store import TelemetryStore
from llmhost.types import InvalidRequest, LlmhostError

router = APIRouter()
EVENT_INTERVAL = 1.0
RATE_WINDOW = 10.0  # seconds of finished requests behind "requests per second"
MAX_WINDOW = 30 * 86400


class RequestUnknown(LlmhostError):
    status = 404
    kind = "not_found"


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def engine_infos(service: Service) -> list[EngineInfo]:
    return [
        EngineInfo(
            model=slot.name,
            state=str(slot.engine.state if slot.engine else "stopped"),
            memory_mib=slot.engine.memory.by_device if slot.engine else {},
            queue_depth=slot.waiting,
            in_flight=slot.in_flight,
        )
        for slot in service.scheduler.models.values()
    ]


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    service = _service(request)
    registry = service.monitor.registry(lambda: engine_infos(service))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# JSON views ---------------------------------------------------------------------------------------


def record_view(record: RequestRecord, now: float) -> dict[str, Any]:
    return {
        "id": record.id,
        "dialect": record.dialect,
        "model": record.model,
        "state": str(record.state),
        "started_at": record.started_at,
        "elapsed_ms": (record.t_finished or now) * 1000 - record.t_started * 1000,
        "ttft_ms": record.ttft_ms,
        "chunks": record.outputs,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "tokens_per_second": record.tokens_per_second,
        "duration_ms": record.duration_ms,
        "status": record.status,
        "error": record.error,
    }


def engine_view(service: Service, slot: ModelSlot) -> dict[str, Any]:
    engine = slot.engine
    stats = service.monitor.engine_stats.latest(slot.name)
    rates = service.monitor.engine_stats.rates(slot.name)
    started = engine.started_at if engine is not None else None
    return {
        "model": slot.name,
        "state": str(engine.state) if engine else "stopped",
        "pid": engine.process.pid if engine and engine.process else None,
        "port": engine.port if engine and engine.port else None,
        "uptime_s": time.time() - started if started and engine and engine.state == "ready" else None,
        "restarts": engine.restarts if engine else 0,
        "last_error": engine.last_error if engine else None,
        "argv": engine.argv if engine else [],
        "memory_mib": engine.memory.by_device if engine else {},
        "parallel": slot.profile.parallel,
        "ctx": slot.profile.ctx,
        "in_flight": slot.in_flight,
        "waiting": slot.waiting,
        "pinned": slot.pinned,
        "stats": asdict(stats) | {"metrics_text": None} if stats else None,
        "rates": asdict(rates) if rates else None,
    }


def dashboard(service: Service) -> dict[str, Any]:
    monitor, now = service.monitor, time.monotonic()
    sample = monitor.sampler.latest()
    recent = [r for r in monitor.tracker.finished() if r.t_finished and now - r.t_finished <= RATE_WINDOW]
    rates = [monitor.engine_stats.rates(slot) for slot in service.scheduler.models]
    throughputs = [r.generation_throughput for r in rates if r is not None and r.generation_throughput is not None]
    return {
        "time": time.time(),
        "health": "ok",
        "gpus": gpu_views(service, sample.gpus) if sample else [],
        "no_gpu_reason": getattr(service.scheduler.gpus, "error", None),
        "host": asdict(sample.host) if sample else None,
        "engines": [engine_view(service, slot) for slot in service.scheduler.models.values()],
        "active_requests": [record_view(r, now) for r in monitor.tracker.active()],
        "requests_per_second": len(recent) / RATE_WINDOW,
        "tokens_per_second": sum(throughputs) if throughputs else None,
        "recent_errors": [record_view(r, now) for r in monitor.tracker.finished() if r.state == RequestState.ERROR][
            :20
        ],
    }


def gpu_view(gpu: Any, engines_by_pid: dict[int, str]) -> dict[str, Any]:
    """A GPU sample, its processes matched to our engines by pid."""
    view = asdict(gpu)
    if view["processes"] is not None:
        view["processes"] = [dict(p, model=engines_by_pid.get(p["pid"])) for p in view["processes"]]
    return view


def gpu_views(service: Service, gpus: Any) -> list[dict[str, Any]]:
    pids = {engine.pid: engine.model for engine in service.running_engines() if engine.pid is not None}
    return [gpu_view(gpu, pids) for gpu in gpus]


@router.get("/api/metrics/dashboard")
async def dashboard_route(request: Request) -> Response:
    return ORJSONResponse(dashboard(_service(request)))


@router.get("/api/metrics/gpu")
async def gpu_route(request: Request) -> Response:
    service = _service(request)
    since = time.time() - _window_seconds(request, 300)
    history = service.monitor.sampler.history(since)
    body = {
        "gpus": gpu_views(service, history[-1].gpus) if history else [],
        "no_gpu_reason": getattr(service.scheduler.gpus, "error", None),
        "history": [{"ts": s.ts, "gpus": [asdict(gpu) for gpu in s.gpus]} for s in history],
    }
    return ORJSONResponse(body)


@router.get("/api/metrics/models")
async def models_route(request: Request) -> Response:
    service = _service(request)
    since = time.time() - _window_seconds(request, 3600)
    aggregates = await service.monitor.in_store(lambda store: store.request_aggregates("model", since=since))
    speed = await service.monitor.in_store(
        lambda store: store.series("engine_generation_throughput_tokens_per_second", since=since)
    )
    slots = service.scheduler.models
    return ORJSONResponse(
        {
            "models": [asdict(a) for a in aggregates or []],
            "engines": [engine_view(service, slot) for slot in slots.values()],
            "throughput_history": asdict(speed) if speed is not None else None,
        }
    )


@router.get("/api/metrics/apis")
async def apis_route(request: Request) -> Response:
    service = _service(request)
    since = time.time() - _window_seconds(request, 3600)
    query = request.query_params
    filters: dict[str, Any] = {
        "model": query.get("model"),
        "dialect": query.get("dialect"),
        "state": RequestState(query["state"]) if query.get("state") in set(RequestState) else None,
        "status": int(query["status"]) if (query.get("status") or "").isdigit() else None,
    }
    limit = min(int(query["limit"]), 1000) if (query.get("limit") or "").isdigit() else 100

    def read(store: TelemetryStore) -> tuple[Any, Any]:
        dialects = store.request_aggregates("dialect", since=since)
        return dialects, store.recent_requests(limit=limit, since=since, **filters)

    dialects, requests = await service.monitor.in_store(read) or ([], [])
    return ORJSONResponse({"dialects": [asdict(d) for d in dialects], "requests": [asdict(r) for r in requests]})


@router.get("/api/metrics/series")
async def series_route(request: Request) -> Response:
    """One stored series over ``window`` seconds, e.g. ``name=engine_kv_cache_usage_ratio&model=m``; every other
    query parameter filters by label."""
    query = dict(request.query_params)
    name = query.pop("name", "")
    if name not in HELP:
        raise InvalidRequest(f"unknown series {name!r}; one of: {', '.join(sorted(HELP))}", param="name")
    since = time.time() - _window_seconds(request, 300)
    query.pop("window", None)
    history = await _service(request).monitor.in_store(lambda store: store.series(name, since=since, labels=query))
    return ORJSONResponse(asdict(history) if history is not None else None)


@router.get("/api/progress/{request_id}")
async def progress(request: Request, request_id: str) -> Response:
    record = _service(request).monitor.tracker.get(request_id)
    if record is None:
        raise RequestUnknown(f"no request {request_id} is in progress or recently finished")
    return ORJSONResponse(record_view(record, time.monotonic()))


@router.get("/api/events")
async def events(request: Request) -> Response:
    """The dashboard snapshot once a second as SSE; ends when the client leaves."""
    service = _service(request)

    stopping: asyncio.Event = request.app.state.stopping

    async def stream() -> AsyncIterator[bytes]:
        while not stopping.is_set():  # an open dashboard tab must not hold up a shutdown
            yield b"data: " + orjson.dumps(dashboard(service)) + b"\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), EVENT_INTERVAL)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=STREAM_HEADERS)


def _window_seconds(request: Request, default: float) -> float:
    raw = request.query_params.get("window", str(default))
    try:
        window = float(raw)
    except ValueError:
        window = -1.0
    if not 0 < window <= MAX_WINDOW:
        raise InvalidRequest(f"window must be a number of seconds between 0 and {MAX_WINDOW}, got {raw!r}")
    return window

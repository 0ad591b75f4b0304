"""Admin routes: engines and models (state, memory, queue), load, unload, pin; recent scheduler events."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from llmhost.engines.scheduler import ModelSlot, Scheduler
from llmhost.service import Service
from llmhost.types import InvalidRequest

router = APIRouter(prefix="/admin")


def slot_status(scheduler: Scheduler, slot: ModelSlot) -> dict[str, Any]:
    engine = slot.engine
    process = engine.process if engine else None
    now = time.monotonic()
    return {
        "model": slot.name,
        "state": str(engine.state) if engine else "stopped",
        "reason": engine.last_error if engine else None,
        "pid": process.pid if process else None,
        "port": (engine.port or None) if engine else None,
        "argv": engine.argv if engine else [],
        "uptime_s": round(time.time() - engine.started_at, 1) if engine and engine.started_at else None,
        "restarts": engine.restarts if engine else 0,
        "slots_busy": slot.in_flight,
        "slots_total": slot.profile.parallel,
        "queued": slot.waiting,
        "pinned": slot.pinned,
        "priority": slot.profile.priority,
        "idle_s": round(now - slot.last_used, 1),
        "expires_in_s": round(slot.expires_at - now, 1) if slot.expires_at is not None else None,
        "estimate_mib": round(slot.estimate.total_mib, 1),
        "memory_mib": {k: round(v, 1) for k, v in scheduler.charges(slot).items()},
        "memory_reported": bool(engine and engine.memory.by_device),
        "memory_by_buffer_mib": engine.memory.by_device if engine else {},
        "evictions": slot.evictions,
        "log_tail": process.tail(20) if process else [],
    }


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/engines")
async def list_engines(request: Request) -> dict[str, Any]:
    scheduler = _service(request).scheduler
    slots = [slot for slot in scheduler.models.values() if slot.engine is not None]
    return {
        "engines": [slot_status(scheduler, slot) for slot in slots],
        "capacity_mib": {k: round(v, 1) for k, v in scheduler.capacity().items()},
        "events": scheduler.events[-50:],
    }


@router.post("/models/{model:path}/load")
async def load(request: Request, model: str) -> dict[str, Any]:
    service = _service(request)
    entry = service.resolve(model)
    await service.scheduler.load(entry, service.catalog.profile(entry))
    return slot_status(service.scheduler, service.scheduler.models[entry.name])


@router.post("/models/{model:path}/unload")
async def unload(request: Request, model: str) -> dict[str, Any]:
    service = _service(request)
    entry = service.resolve(model)
    unloaded = await service.scheduler.unload(entry.name)
    return {"model": entry.name, "unloaded": unloaded, "state": "stopped"}


@router.post("/models/{model:path}/pin")
async def pin(request: Request, model: str) -> dict[str, Any]:
    service = _service(request)
    entry = service.resolve(model)
    body = await request.json() if await request.body() else {}
    pinned = body.get("pinned", True) if isinstance(body, dict) else True
    if not isinstance(pinned, bool):
        raise InvalidRequest("pinned must be true or false", param="pinned")
    service.scheduler.slot(entry, service.catalog.profile(entry))
    service.scheduler.set_pinned(entry.name, pinned)
    return {"model": entry.name, "pinned": pinned}

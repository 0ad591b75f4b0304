"""Admin routes: what the engines are doing, and unloading one."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from llmhost.engines.engine import Engine
from llmhost.service import Service
from llmhost.types import ModelNotFound

router = APIRouter(prefix="/admin")


def engine_status(engine: Engine) -> dict[str, Any]:
    process = engine.process
    return {
        "model": engine.model,
        "state": str(engine.state),
        "state_since": process.state_since if process else None,
        "reason": engine.last_error,
        "pid": process.pid if process else None,
        "port": engine.port or None,
        "argv": engine.argv,
        "uptime_s": round(time.time() - engine.started_at, 1) if engine.started_at else None,
        "restarts": engine.restarts,
        "in_flight": engine.in_flight,
        "slots": engine.profile.parallel,
        "memory_mib": engine.memory.by_device or None,
        "memory_total_mib": engine.memory.total_mib(),
        "log_tail": process.tail(20) if process else [],
    }


@router.get("/engines")
async def list_engines(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    return {"engines": [engine_status(e) for e in service.scheduler.engines.values()]}


@router.post("/engines/{model:path}/unload")
async def unload(request: Request, model: str) -> dict[str, Any]:
    service: Service = request.app.state.service
    entry = service.catalog.get(model)
    if not await service.scheduler.unload(entry.name):
        raise ModelNotFound(model)
    return {"model": entry.name, "state": "stopped"}

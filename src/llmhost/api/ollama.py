"""Ollama routes (so far ``/api/ps``): thin glue over the scheduler."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from fastapi import APIRouter, Request

from llmhost.engines.memory import HOST
from llmhost.protocols import ollama
from llmhost.service import Service

router = APIRouter(prefix="/api")
MIB = 1024 * 1024


@router.get("/ps")
async def ps(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    scheduler = service.scheduler
    models = []
    for slot in scheduler.models.values():
        if slot.engine is None:
            continue
        charges = scheduler.charges(slot)
        vram = sum(mib for device, mib in charges.items() if device != HOST)
        expires = None if slot.expires_at is None else time.time() + (slot.expires_at - time.monotonic())
        meta = slot.entry.meta
        models.append(
            ollama.ps_model(
                name=slot.name,
                digest=hashlib.sha256(str(slot.entry.path).encode()).hexdigest(),
                size=int(sum(charges.values()) * MIB),
                size_vram=int(vram * MIB),
                expires_at=expires,
                context_length=slot.profile.ctx,
                family=meta.architecture if meta else None,
                parameter_size=ollama.parameter_size(meta.parameter_count if meta else None),
                quantization=meta.quantization if meta else None,
            )
        )
    return {"models": models}

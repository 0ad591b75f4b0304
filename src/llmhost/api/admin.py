"""Admin routes: engines and models (state, memory, queue), load, unload, pin; recent scheduler events."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict
from typing import Any

import psutil
import yaml
from fastapi import APIRouter, Request

from llmhost.api.common import read_json
from llmhost.config import ModelProfile
from llmhost.config_presets import (
    PRESET_SECTIONS,
    Preset,
    PresetStore,
    check_name,
    checked_sections,
    document_sections,
    sections_of,
    with_preset,
)
from llmhost.engines.scheduler import ModelSlot, Scheduler
from llmhost.live_config import ConfigRejected, LiveConfig, redact, redact_change, unredact
from llmhost.service import Service
from llmhost.split import PRESETS as SPLIT_PRESETS
from llmhost.split import plan
from llmhost.telemetry.monitor import CURRENT
from llmhost.types import InvalidRequest

SPLIT_FIELDS = ("tensor_split", "split_mode", "main_gpu")

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
    await service.scheduler.load(entry, service.profile(entry))
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
    body = await read_json(request) if await request.body() else {}
    if not isinstance(body, dict):
        raise InvalidRequest('send {"pinned": true} or {"pinned": false}, or no body to pin', param="pinned")
    pinned = body.get("pinned", True)
    if not isinstance(pinned, bool):
        raise InvalidRequest("pinned must be true or false", param="pinned")
    service.scheduler.slot(entry, service.profile(entry))
    service.scheduler.set_pinned(entry.name, pinned)
    return {"model": entry.name, "pinned": pinned}


@router.get("/profile-schema")
async def profile_schema() -> dict[str, Any]:
    """The JSON schema of a model profile: what the engine manager's form offers and checks."""
    return ModelProfile.model_json_schema()


@router.post("/models/{model:path}/start")
async def start(request: Request, model: str) -> dict[str, Any]:
    """Start a model's engine with parameters (``{"overrides": {...}}``); a running one restarts with them."""
    service = _service(request)
    body = await read_json(request) if await request.body() else {}
    overrides = body.get("overrides", {}) if isinstance(body, dict) else None
    if not isinstance(overrides, dict):
        raise InvalidRequest('send {"overrides": {<profile field>: <value>, ...}}', param="overrides")
    engine = await service.start_engine(model, overrides)
    return slot_status(service.scheduler, service.scheduler.models[engine.model])


@router.post("/models/{model:path}/restart")
async def restart(request: Request, model: str) -> dict[str, Any]:
    service = _service(request)
    engine = await service.restart_engine(model)
    return slot_status(service.scheduler, service.scheduler.models[engine.model])


@router.post("/models/{model:path}/stop")
async def stop(request: Request, model: str) -> dict[str, Any]:
    """Stop the engine (after its in-flight requests) and forget parameters the manager set."""
    service = _service(request)
    stopped = await service.stop_engine(model)
    return {"model": service.catalog.get(model).name, "unloaded": stopped, "state": "stopped"}


@router.get("/engines/{model:path}/log")
async def engine_log(request: Request, model: str) -> dict[str, Any]:
    service = _service(request)
    name = service.catalog.get(model).name
    slot = service.scheduler.models.get(name)
    process = slot.engine.process if slot is not None and slot.engine is not None else None
    raw = request.query_params.get("lines", "200")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InvalidRequest("lines must be a whole number from 1 to 10000", param="lines")
    return {"model": name, "lines": process.tail(int(raw)) if process else []}


@router.get("/providers")
async def providers(request: Request) -> dict[str, Any]:
    """Each provider's health (state, latency, last error), load and models; never its API key."""
    return {"providers": [provider.view() for provider in _service(request).providers.providers]}


@router.get("/runtime")
async def runtime() -> dict[str, Any]:
    """The service process itself: asyncio tasks alive, threads, memory and open files (leak checks)."""
    process = psutil.Process()
    return {
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "rss_mib": process.memory_info().rss / (1024 * 1024),
        "open_files": len(process.open_files()),
        "connections": len(process.net_connections()),
    }


# live configuration ---------------------------------------------------------------------------------


def _live(request: Request) -> LiveConfig:
    live: LiveConfig = request.app.state.live
    return live


def _who(request: Request) -> str:
    context = CURRENT.get()
    return context.key if context is not None and context.key else (request.client.host if request.client else "?")


async def _document(request: Request) -> str:
    """The document sent, with provider keys the API showed as ``<hidden>`` put back."""
    return unredact(document_from(await read_json(request)), _live(request).document())


def document_from(body: object) -> str:
    if isinstance(body, dict) and isinstance(body.get("yaml"), str):
        return str(body["yaml"])
    if isinstance(body, dict) and isinstance(body.get("config"), dict):
        return yaml.safe_dump(body["config"], sort_keys=False)
    raise InvalidRequest('send {"yaml": "<config text>"} or {"config": {...}}')


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    """The configuration document (the file as it is) and whether it can be changed live."""
    live = _live(request)
    return {"yaml": redact(live.document()), "path": str(live.path) if live.path else None}


@router.post("/config/validate")
async def validate_config(request: Request) -> dict[str, Any]:
    live = _live(request)
    try:
        await asyncio.to_thread(live.validate, await _document(request))
    except ConfigRejected as exc:
        return {"valid": False, "errors": exc.message.split("; ")}
    return {"valid": True, "errors": []}


@router.post("/config/apply")
async def apply_config(request: Request) -> dict[str, Any]:
    change = await _live(request).apply(await _document(request), who=_who(request))
    return redact_change(asdict(change))


@router.get("/config/history")
async def config_history(request: Request) -> dict[str, Any]:
    return {"changes": [redact_change(change) for change in _live(request).history()]}


@router.post("/config/rollback/{change_id}")
async def rollback_config(request: Request, change_id: int) -> dict[str, Any]:
    change = await _live(request).rollback(change_id, who=_who(request))
    return redact_change(asdict(change))


def _presets(request: Request) -> PresetStore:
    store: PresetStore | None = getattr(request.app.state, "presets", None)
    if store is None:
        store = PresetStore(_service(request).settings.data_dir / "config-presets.json")
        request.app.state.presets = store
    return store


@router.get("/config/presets")
async def list_presets(request: Request) -> dict[str, Any]:
    presets = await asyncio.to_thread(_presets(request).list)
    return {"presets": [asdict(preset) for preset in presets], "sections": list(PRESET_SECTIONS)}


@router.post("/config/presets")
async def save_preset(request: Request) -> dict[str, Any]:
    """``{"name": n}`` saves the live sections of the configuration in force; with ``"config": {...}`` (or
    ``"yaml"``) it saves those sections instead, after checking they would validate."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise InvalidRequest('send {"name": "<preset>"} and optionally {"config": {...}} or {"yaml": "..."}')
    live = _live(request)
    if "config" in body or "yaml" in body:
        sections = checked_sections(document_sections(document_from(body)))
        await asyncio.to_thread(live.validate, with_preset(live.document(), Preset("", 0.0, "", sections)))
    else:
        sections = sections_of(live.document())
    preset = await asyncio.to_thread(_presets(request).save, body["name"], sections, _who(request))
    return asdict(preset)


@router.post("/config/presets/{name}/apply")
async def apply_preset(request: Request, name: str) -> dict[str, Any]:
    preset = await asyncio.to_thread(_presets(request).get, check_name(name))
    live = _live(request)
    change = await live.apply(with_preset(live.document(), preset), who=_who(request))
    return redact_change(asdict(change))


@router.delete("/config/presets/{name}")
async def delete_preset(request: Request, name: str) -> dict[str, Any]:
    await asyncio.to_thread(_presets(request).delete, check_name(name))
    return {"deleted": name}


def _split_fields(document: str, model: str) -> dict[str, Any]:
    data = yaml.safe_load(document) or {}
    profile = (data.get("models") or {}).get(model) or {}
    return {field: profile.get(field) for field in SPLIT_FIELDS}


def previous_split(history: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The split in force before the last applied change that altered this model's split."""
    for change in reversed(history):
        if change["result"] != "applied":
            continue
        before, after = _split_fields(change["before"], model), _split_fields(change["after"], model)
        if before != after:
            return {**before, "change": change["id"], "time": change["time"]}
    return None


@router.get("/models/{model:path}/split")
async def get_split(request: Request, model: str) -> dict[str, Any]:
    """The GPUs, the split in force, the one before it, and the presets: what the Config page's sliders start from."""
    service = _service(request)
    entry = service.catalog.get(model)
    gpus = await asyncio.to_thread(service.scheduler.gpus.memory)
    profile = service.profile(entry)
    history = await asyncio.to_thread(_live(request).history)
    sample = service.monitor.sampler.latest()
    names = {gpu.index: gpu.name for gpu in sample.gpus} if sample else {}
    return {
        "model": entry.name,
        "gpus": [asdict(gpu) | {"name": names.get(gpu.index)} for gpu in gpus],
        "no_gpu_reason": None if gpus else getattr(service.scheduler.gpus, "error", None) or "no GPU detected",
        "current": {field: getattr(profile, field) for field in SPLIT_FIELDS},
        "previous": previous_split(history, entry.name),
        "presets": list(SPLIT_PRESETS),
    }


@router.post("/models/{model:path}/split")
async def split_model(request: Request, model: str) -> dict[str, Any]:
    """Split a model across GPUs by a preset (equal, total, free, custom, single), applied live; with
    ``"dry_run": true`` only checked (the split, then the whole configuration it would give)."""
    service = _service(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest('send {"preset": "equal|total|free|custom|single", "gpus": [..], "ratios": [..]}')
    gpus = await asyncio.to_thread(service.scheduler.gpus.memory)
    split = plan(body.get("preset", "equal"), gpus, body.get("gpus"), body.get("ratios"), body.get("mode", "layer"))
    live = _live(request)
    document = yaml.safe_load(live.document()) or {}
    name = service.catalog.get(model).name
    document.setdefault("models", {}).setdefault(name, {}).update(split.profile_fields())
    text = yaml.safe_dump(document, sort_keys=False)
    if body.get("dry_run"):
        try:
            await asyncio.to_thread(live.validate, text)
        except ConfigRejected as exc:
            return {"split": split.profile_fields(), "valid": False, "errors": exc.message.split("; ")}
        return {"split": split.profile_fields(), "valid": True, "errors": []}
    change = await live.apply(text, who=_who(request))
    return {"split": split.profile_fields(), "change": redact_change(asdict(change))}

"""Gathering the advisor's facts: from the running service (engines, GPU samples, telemetry history), or
offline from the configuration, the catalog and the GPUs when no service answers. Disk and the telemetry store
are read off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace

import psutil

from llmhost.advisor.facts import Facts, Generation, ModelFacts, PowerReading
from llmhost.config import ModelProfile, Settings
from llmhost.engines.process import State
from llmhost.models.catalog import Catalog, ModelEntry
from llmhost.service import Service
from llmhost.telemetry.backends import make_gpus
from llmhost.telemetry.gpu import GpuSample
from llmhost.telemetry.requests import RequestState, RequestSummary

MIB = 1024 * 1024
WINDOW_S = 3600.0
RECENT_REQUESTS = 1000


def ollama_num_ctx(entry: ModelEntry) -> int | None:
    value = (entry.params or {}).get("num_ctx") if entry.source == "ollama" else None
    return int(value) if isinstance(value, int | float) and value > 0 else None


def model_facts(entry: ModelEntry, profile: ModelProfile, generations: Iterable[Generation] = ()) -> ModelFacts:
    return ModelFacts(
        name=entry.name,
        source=entry.source,
        file_size=entry.meta.file_size if entry.meta else entry.size,
        meta=entry.meta,
        profile=profile,
        ollama_num_ctx=ollama_num_ctx(entry),
        generations=tuple(generations),
    )


def generation(summary: RequestSummary) -> Generation:
    return Generation(
        started_at=summary.started_at,
        duration_s=(summary.duration_ms or 0.0) / 1000,
        prompt_tokens=summary.prompt_tokens,
        completion_tokens=summary.completion_tokens,
        tokens_per_second=summary.tokens_per_second,
    )


def power_readings(samples: Iterable[tuple[float, Iterable[GpuSample]]]) -> tuple[PowerReading, ...]:
    return tuple(
        PowerReading(ts, {g.index: g.power_draw_w for g in gpus if g.power_draw_w is not None}) for ts, gpus in samples
    )


# from the running service ------------------------------------------------------------------------------------


async def from_service(service: Service, model: str | None = None, window_s: float = WINDOW_S) -> Facts:
    settings, monitor = service.settings, service.monitor
    since = time.time() - window_s
    latest = monitor.sampler.latest()
    gpus = tuple(latest.gpus) if latest else tuple(await asyncio.to_thread(_sample_gpus, service))
    host_total = latest.host.memory_total_mib if latest else psutil.virtual_memory().total / MIB
    history = monitor.sampler.history(since)
    recent = await monitor.in_store(
        lambda store: store.recent_requests(limit=RECENT_REQUESTS, state=RequestState.DONE, since=since)
    )
    by_model: dict[str, list[Generation]] = {}
    for summary in recent or []:
        by_model.setdefault(summary.model, []).append(generation(summary))
    entries = [e for e in service.catalog.entries() if model is None or e.name == model]
    return Facts(
        gpus=gpus,
        host_total_mib=host_total,
        reserve_mib=settings.scheduler.reserve_mib,
        models=tuple(_served(service, entry, by_model.get(entry.name, []), len(gpus)) for entry in entries),
        settings=settings.advisor,
        measured=True,
        window_s=window_s,
        gpu_budget_mib=settings.scheduler.gpu_memory_mib,
        host_budget_mib=settings.scheduler.host_memory_mib,
        power_history=power_readings((s.ts, s.gpus) for s in history),
        gpu_error=getattr(service.scheduler.gpus, "error", None),
    )


def _sample_gpus(service: Service) -> list[GpuSample]:
    return service.monitor.gpus.sample()


def _served(service: Service, entry: ModelEntry, generations: list[Generation], gpu_count: int) -> ModelFacts:
    slot = service.scheduler.models.get(entry.name)
    engine = slot.engine if slot is not None else None
    profile = slot.profile if slot is not None and engine is not None else service.profile(entry)
    facts = model_facts(entry, profile, generations)
    if slot is None or engine is None:
        return facts
    reported = engine.state == State.READY and bool(engine.memory.by_device)
    charges = service.scheduler.charges(slot, gpu_count)  # with the count: no NVML call on the event loop
    return replace(facts, loaded=True, charges_mib=charges, charges_reported=reported)


# offline ---------------------------------------------------------------------------------------------------


def offline(settings: Settings, model: str | None = None) -> Facts:
    """Blocking (catalog scan, GPU sampling): for the CLI when no service answers."""
    catalog = Catalog(settings)
    entries = [e for e in catalog.scan() if model is None or e.name == model]
    backend = make_gpus(settings)
    error: str | None = None
    try:
        gpus = tuple(backend.sample())
    except Exception as exc:  # a broken driver: advice without GPUs, saying why
        gpus, error = (), f"GPU sampling failed: {exc}"
    else:
        error = getattr(backend, "error", None)
    return Facts(
        gpus=gpus,
        host_total_mib=psutil.virtual_memory().total / MIB,
        reserve_mib=settings.scheduler.reserve_mib,
        models=tuple(model_facts(entry, catalog.profile(entry)) for entry in entries),
        settings=settings.advisor,
        measured=False,
        window_s=0.0,
        gpu_budget_mib=settings.scheduler.gpu_memory_mib,
        host_budget_mib=settings.scheduler.host_memory_mib,
        gpu_error=error,
    )

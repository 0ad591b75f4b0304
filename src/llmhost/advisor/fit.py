"""Memory fit: for every model and every set of devices (each GPU, each combination, the host), whether the
configured profile fits with a memory-proportional split, how much context fits in what is left, and what a
quantized KV cache or flash attention would free. Estimates from GGUF metadata, labelled as such.

A unified-memory GPU has no memory of its own: its figures are the host's, so a set never adds the host to it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from llmhost import split
from llmhost.advisor.facts import Facts, ModelFacts
from llmhost.engines import memory
from llmhost.engines.memory import MIB
from llmhost.telemetry.gpu import GpuMemory, GpuSample

HOST = memory.HOST
MAX_FULL_ENUMERATION = 4  # up to this many GPUs every combination is listed; above, singles, pairs and all
SCORE_BYTES = 4  # llama.cpp keeps attention scores in f32 when flash attention is off


@dataclass(frozen=True, slots=True)
class Need:
    """What a model needs at its configured profile (MiB), and what each KV cell costs."""

    weights_mib: float
    kv_mib: float
    compute_mib: float
    scores_mib: float  # attention scores buffer, allocated only without flash attention
    kv_per_cell_mib: float
    scores_per_cell_mib: float
    cells: int  # ctx per slot x slots
    kv_q8_0_saves_mib: float
    kv_q4_0_saves_mib: float
    flash_attention: str  # on, off, auto

    @property
    def total_mib(self) -> float:
        return self.weights_mib + self.kv_mib + self.compute_mib + self.scores_mib

    @property
    def fixed_mib(self) -> float:
        return self.weights_mib + self.compute_mib

    @property
    def per_cell_mib(self) -> float:
        return self.kv_per_cell_mib + self.scores_per_cell_mib

    @property
    def flash_attention_saves_mib(self) -> float:
        return self.scores_mib


@dataclass(frozen=True, slots=True)
class DeviceSet:
    label: str  # "GPU 0", "GPU 0+1", "CPU (host memory)"
    devices: tuple[str, ...]  # "gpu0", ... or ("host",)
    capacity_mib: dict[str, float]
    tensor_split: list[float] | None  # memory-proportional, one entry per GPU present
    split_mode: str | None
    main_gpu: int | None
    shares: dict[str, float]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SetFit:
    device_set: DeviceSet
    fits: bool
    need_mib: dict[str, float]  # the configured profile's memory per device under this split
    free_after_mib: float  # what stays free in the set (negative: short by that much)
    context_tokens: int  # KV cells that fit in the set (all slots together); 0 when the weights do not fit
    context_per_slot: int  # per slot, capped at the model's true context


@dataclass(frozen=True, slots=True)
class ModelFit:
    model: str
    need: Need
    configured_devices: dict[str, float]  # where the configured profile puts it (MiB per device)
    configured_fits: bool
    sets: tuple[SetFit, ...]

    def smallest_fitting(self) -> SetFit | None:
        fitting = [f for f in self.sets if f.fits and f.device_set.devices != (HOST,)]
        return min(fitting, key=lambda f: (len(f.device_set.devices), -f.free_after_mib), default=None)


def need(model: ModelFacts) -> Need:
    profile, meta = model.profile, model.meta
    base = memory.estimate(meta, model.file_size, profile)
    cells = profile.ctx * profile.parallel
    fa = profile.flash_attn or "auto"
    heads = (meta.head_count or 0) if meta else 0
    ubatch = profile.ubatch or memory.DEFAULT_UBATCH
    scores_per_cell = ubatch * heads * SCORE_BYTES / MIB if fa == "off" else 0.0

    def kv_at(cache: str) -> float:
        quantized = profile.model_copy(update={"cache_type_k": cache, "cache_type_v": cache})
        return memory.estimate(meta, model.file_size, quantized).kv_mib

    return Need(
        weights_mib=base.weights_mib,
        kv_mib=base.kv_mib,
        compute_mib=base.compute_mib,
        scores_mib=scores_per_cell * cells,
        kv_per_cell_mib=base.kv_mib / cells if cells else 0.0,
        scores_per_cell_mib=scores_per_cell,
        cells=cells,
        kv_q8_0_saves_mib=max(base.kv_mib - kv_at("q8_0"), 0.0),
        kv_q4_0_saves_mib=max(base.kv_mib - kv_at("q4_0"), 0.0),
        flash_attention=fa,
    )


def gpu_capacity(gpu: GpuSample, facts: Facts) -> float:
    total = gpu.memory_total_mib or 0.0
    return facts.gpu_budget_mib or max(total - facts.reserve_mib, 0.0)


def host_capacity(facts: Facts) -> float:
    """The host's budget; with a unified-memory GPU, the figure NVML gives for it is the host's memory."""
    unified = [gpu_capacity(g, facts) for g in facts.gpus if g.unified_memory]
    if unified and facts.host_budget_mib is None:
        return unified[0]
    return facts.host_budget_mib or max(facts.host_total_mib - facts.reserve_mib, 0.0)


def device_sets(facts: Facts) -> list[DeviceSet]:
    gpus = list(facts.gpus)
    memories = [GpuMemory(g.index, g.memory_total_mib or 0.0, g.memory_free_mib or 0.0) for g in gpus]
    sets = [_gpu_set(combo, memories, facts) for combo in _combinations([g.index for g in gpus])]
    unified = [g.index for g in gpus if g.unified_memory]
    note = f"the same memory as GPU {', '.join(map(str, unified))} (unified)" if unified else None
    host = DeviceSet("CPU (host memory)", (HOST,), {HOST: host_capacity(facts)}, None, None, None, {HOST: 1.0}, note)
    return [*sets, host]


def _combinations(indexes: list[int]) -> list[tuple[int, ...]]:
    sizes = range(1, len(indexes) + 1)
    if len(indexes) > MAX_FULL_ENUMERATION:
        sizes = range(1, 3)
    combos = [combo for size in sizes for combo in itertools.combinations(indexes, size)]
    if len(indexes) > MAX_FULL_ENUMERATION:
        combos.append(tuple(indexes))
    return combos


def _gpu_set(combo: tuple[int, ...], memories: list[GpuMemory], facts: Facts) -> DeviceSet:
    by_index = {g.index: g for g in facts.gpus}
    capacity = {f"gpu{i}": gpu_capacity(by_index[i], facts) for i in combo}
    label = "GPU " + "+".join(map(str, combo))
    note = "unified memory: shared with the host" if any(by_index[i].unified_memory for i in combo) else None
    if len(combo) == 1:
        return DeviceSet(label, (f"gpu{combo[0]}",), capacity, None, "none", combo[0], {f"gpu{combo[0]}": 1.0}, note)
    chosen = split.plan("total", memories, list(combo))
    ratios = chosen.tensor_split or []
    shares = {f"gpu{g.index}": share for g, share in zip(memories, ratios, strict=True) if share > 0}
    return DeviceSet(label, tuple(shares), capacity, ratios, chosen.split_mode, None, shares, note)


def fit_in(model: ModelFacts, needed: Need, device_set: DeviceSet) -> SetFit:
    shares, capacity = device_set.shares, device_set.capacity_mib
    need_mib = {device: needed.total_mib * share for device, share in shares.items()}
    fits = all(need_mib[d] <= capacity[d] for d in shares)
    largest_total = min(capacity[d] / share for d, share in shares.items())
    cells = _cells_fitting(largest_total - needed.fixed_mib, needed.per_cell_mib)
    true_ctx = model.meta.context_length if model.meta and model.meta.context_length else None
    per_slot = cells // model.profile.parallel
    return SetFit(
        device_set=device_set,
        fits=fits,
        need_mib=need_mib,
        free_after_mib=sum(capacity.values()) - needed.total_mib,
        context_tokens=cells,
        context_per_slot=min(per_slot, true_ctx) if true_ctx else per_slot,
    )


def _cells_fitting(room_mib: float, per_cell_mib: float) -> int:
    if room_mib <= 0:
        return 0
    if per_cell_mib <= 0:
        return 0
    return math.floor(room_mib / per_cell_mib)


def configured_devices(needed: Need, model: ModelFacts, gpu_count: int) -> dict[str, float]:
    """Where the configured profile puts the model, as the scheduler charges it (before the engine reports)."""
    return memory.device_charges(needed.total_mib, model.profile, gpu_count)


def capacities(facts: Facts) -> dict[str, float]:
    budget = {f"gpu{g.index}": gpu_capacity(g, facts) for g in facts.gpus}
    return budget | {HOST: host_capacity(facts)}


def model_fit(model: ModelFacts, facts: Facts, sets: list[DeviceSet]) -> ModelFit:
    needed = need(model)
    configured = configured_devices(needed, model, len(facts.gpus))
    budget = capacities(facts)
    fits = all(mib <= budget.get(device, 0.0) for device, mib in configured.items())
    return ModelFit(model.name, needed, configured, fits, tuple(fit_in(model, needed, s) for s in sets))


def fits(facts: Facts) -> list[ModelFit]:
    sets = device_sets(facts)
    return [model_fit(model, facts, sets) for model in facts.models]

"""Recommendations: each names what it is about, the figures it rests on (with where they come from), what
to do and what to expect. Pure functions of the facts and the memory fit."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from llmhost.advisor.facts import Facts, ModelFacts
from llmhost.advisor.fit import HOST, ModelFit
from llmhost.telemetry.gpu import GpuSample

Severity = Literal["high", "medium", "low"]
# GB/s per lane and direction after encoding overhead, by PCIe generation.
LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
BUSY_PERCENT = 50.0  # links drop to a lower generation when idle to save power: judge the generation only when busy
IDLE_PERCENT = 5.0
THERMAL_WARN_C = 80.0  # the dashboard's yellow from here (GPU_THRESHOLDS)
POWER_LIMIT_SHARE = 0.95
MIN_SLOT_CTX = 2048  # below this a chat with a system prompt and some history runs out of context
SLOT_FULL_SHARE = 0.8  # measured requests reaching this share of a slot's context are close to being cut


@dataclass(frozen=True, slots=True)
class Evidence:
    what: str
    value: Any
    source: Literal["nvml", "gguf", "config", "telemetry", "engine", "ollama", "estimate"]

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "value": self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    severity: Severity
    subject: str  # "GPU 3", a model name
    title: str
    action: str
    effect: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "title": self.title,
            "action": self.action,
            "effect": self.effect,
            "evidence": [e.to_dict() for e in self.evidence],
        }


# links -----------------------------------------------------------------------------------------------------


def link_share(gpu: GpuSample) -> float | None:
    """The link's bandwidth as a share of its maximum; the generation counts only while the GPU is busy."""
    if gpu.pcie_width is None or gpu.pcie_width_max is None:
        return None
    share = gpu.pcie_width / gpu.pcie_width_max
    if _busy(gpu) and gpu.pcie_gen is not None and gpu.pcie_gen_max is not None:
        share *= LANE_GBPS.get(gpu.pcie_gen, 0.0) / LANE_GBPS.get(gpu.pcie_gen_max, 1.0)
    return min(share, 1.0)


def _busy(gpu: GpuSample) -> bool:
    return (gpu.utilization_percent or 0.0) >= BUSY_PERCENT


def link_gbps(gen: int | None, width: int | None) -> float | None:
    return None if gen is None or width is None else round(LANE_GBPS.get(gen, 0.0) * width, 2)


def pcie(gpu: GpuSample) -> Iterator[Recommendation]:
    share = link_share(gpu)
    if share is None or share >= 0.999:
        return
    now, best = link_gbps(gpu.pcie_gen, gpu.pcie_width), link_gbps(gpu.pcie_gen_max, gpu.pcie_width_max)
    yield Recommendation(
        kind="pcie_link_below_max",
        severity="medium",
        subject=f"GPU {gpu.index}",
        title=f"GPU {gpu.index}'s PCIe link runs at {share:.0%} of its maximum",
        action="Move the card to a slot wired for its full width (check the board manual; M.2 or riser sharing "
        "can halve lanes), reseat it, or keep it for single-GPU models that load once and stay.",
        effect=f"Loading weights and, for a model split across GPUs, every token's hand-over between GPUs go "
        f"through {now} GB/s instead of {best} GB/s.",
        evidence=(
            Evidence("link now", f"Gen {gpu.pcie_gen} x{gpu.pcie_width}", "nvml"),
            Evidence("link maximum", f"Gen {gpu.pcie_gen_max} x{gpu.pcie_width_max}", "nvml"),
            Evidence("utilisation", gpu.utilization_percent, "nvml"),
        ),
    )


# heat and power --------------------------------------------------------------------------------------------


def throttling(gpu: GpuSample) -> Iterator[Recommendation]:
    if gpu.temperature_c is not None and gpu.temperature_c >= THERMAL_WARN_C:
        yield Recommendation(
            kind="thermal_throttling",
            severity="high" if gpu.temperature_c >= THERMAL_WARN_C + 5 else "medium",
            subject=f"GPU {gpu.index}",
            title=f"GPU {gpu.index} runs at {gpu.temperature_c:.0f} °C, near where clocks are cut",
            action="Improve airflow (case fans, spacing between cards), clean the cooler, or cap power "
            "(nvidia-smi -pl) so that it stays cooler at a small cost in speed.",
            effect="Clocks stay up instead of dropping under heat: steadier tokens per second.",
            evidence=(
                Evidence("temperature °C", gpu.temperature_c, "nvml"),
                Evidence("SM clock MHz", gpu.sm_clock_mhz, "nvml"),
                Evidence("warning from °C", THERMAL_WARN_C, "config"),
            ),
        )
    draw, limit = gpu.power_draw_w, gpu.power_limit_w
    if draw is not None and limit and draw >= POWER_LIMIT_SHARE * limit:
        yield Recommendation(
            kind="power_limited",
            severity="low",
            subject=f"GPU {gpu.index}",
            title=f"GPU {gpu.index} draws {draw:.0f} W of its {limit:.0f} W limit",
            action="If cooling allows, raise the enforced power limit (nvidia-smi -pl); otherwise this is the "
            "efficient operating point and can stay.",
            effect="A higher limit lets clocks rise under load (more tokens per second, more watts per token).",
            evidence=(
                Evidence("power draw W", draw, "nvml"),
                Evidence("enforced limit W", limit, "nvml"),
                Evidence("SM clock MHz", gpu.sm_clock_mhz, "nvml"),
            ),
        )


# placement -------------------------------------------------------------------------------------------------


def gpus_of(devices: dict[str, float]) -> list[int]:
    return sorted(int(d[3:]) for d, mib in devices.items() if d.startswith("gpu") and mib > 0)


def model_gpus(model: ModelFacts, fit: ModelFit) -> tuple[list[int], str]:
    """The GPUs a model runs on: the engine's report when it names GPUs, else the configured placement."""
    reported = gpus_of(model.charges_mib) if model.charges_reported else []
    if reported:
        return reported, "engine"
    return gpus_of(fit.configured_devices), "config"


def split_fits_on_one(model: ModelFacts, fit: ModelFit) -> Iterator[Recommendation]:
    gpus, source = model_gpus(model, fit)
    single = [f for f in fit.sets if len(f.device_set.devices) == 1 and f.device_set.devices[0] != HOST and f.fits]
    if len(gpus) < 2 or not single:
        return
    best = max(single, key=lambda f: f.free_after_mib)
    index = best.device_set.main_gpu
    yield Recommendation(
        kind="split_fits_on_one_gpu",
        severity="medium",
        subject=model.name,
        title=f"{model.name} is split over GPUs {'+'.join(map(str, gpus))} but fits on GPU {index}",
        action=f"Pin it to one GPU: split preset 'single' on GPU {index} (split_mode: none, main_gpu: {index}).",
        effect="No hand-over between GPUs for every token (faster decoding, more so on slow links), and the other "
        f"GPU{'s are' if len(gpus) > 2 else ' is'} free for another model.",
        evidence=(
            Evidence("GPUs in use", gpus, "engine" if source == "engine" else "config"),
            Evidence("needs MiB (configured context)", round(fit.need.total_mib), "estimate"),
            Evidence(f"GPU {index} capacity MiB", round(best.device_set.capacity_mib[f"gpu{index}"]), "nvml"),
        ),
    )


def does_not_fit(model: ModelFacts, fit: ModelFit, capacity: dict[str, float]) -> Iterator[Recommendation]:
    if fit.configured_fits:
        return
    short = {d: round(mib - capacity.get(d, 0.0)) for d, mib in fit.configured_devices.items()}
    saves = fit.need.kv_q8_0_saves_mib
    worst = max(short.values())
    remedy = "Lower ctx or parallel, use a smaller quantization"
    if saves >= worst:
        remedy = f"Set cache_type_k/cache_type_v: q8_0 (frees {saves:.0f} MiB, enough), or lower ctx"
    yield Recommendation(
        kind="does_not_fit",
        severity="high",
        subject=model.name,
        title=f"{model.name} does not fit where it is configured",
        action=remedy + ", or spread it over more GPUs (see the fit table).",
        effect="The model can load at all; today a request for it fails with insufficient memory.",
        evidence=(
            Evidence("needs MiB per device", {d: round(m) for d, m in fit.configured_devices.items()}, "estimate"),
            Evidence("capacity MiB per device", {d: round(capacity.get(d, 0.0)) for d in short}, "nvml"),
        ),
    )


def cpu_while_gpu_fits(model: ModelFacts, fit: ModelFit, gpu_count: int) -> Iterator[Recommendation]:
    smallest = fit.smallest_fitting()
    if gpu_count == 0 or model.profile.gpu_layers != 0 or smallest is None:
        return
    yield Recommendation(
        kind="cpu_while_gpu_fits",
        severity="medium",
        subject=model.name,
        title=f"{model.name} runs on the CPU (gpu_layers: 0) while {smallest.device_set.label} would hold it",
        action=f"Remove gpu_layers: 0 from its profile (or set it to all) and place it on {smallest.device_set.label}.",
        effect="Generation on the GPU is typically an order of magnitude faster than on the CPU.",
        evidence=(
            Evidence("gpu_layers", 0, "config"),
            Evidence("needs MiB", round(fit.need.total_mib), "estimate"),
            Evidence(f"{smallest.device_set.label} free after loading MiB", round(smallest.free_after_mib), "nvml"),
        ),
    )


def engine_on_cpu(model: ModelFacts, fit: ModelFit) -> Iterator[Recommendation]:
    """The configuration puts it on GPUs but the engine's buffers are all in host memory."""
    configured = gpus_of(fit.configured_devices)
    reported_gpus = gpus_of(model.charges_mib)
    if not (model.loaded and model.charges_reported and configured) or reported_gpus:
        return
    gpus = "+".join(map(str, configured))
    yield Recommendation(
        kind="engine_on_cpu",
        severity="high",
        subject=model.name,
        title=f"{model.name} is configured for GPU {gpus} but its engine uses host memory only",
        action="Check that llama-server was built with GPU support (llmhost setup picks the CUDA build when a "
        "driver is present) and that the engine log shows the GPU being found.",
        effect="The model actually runs on the GPU(s) it is configured for.",
        evidence=(
            Evidence("engine buffers MiB", {d: round(m) for d, m in model.charges_mib.items()}, "engine"),
            Evidence("configured MiB", {d: round(m) for d, m in fit.configured_devices.items()}, "estimate"),
        ),
    )


def idle_gpus(facts: Facts, used: set[int]) -> Iterator[Recommendation]:
    if not facts.measured:
        return
    for gpu in facts.gpus:
        if gpu.index in used or (gpu.utilization_percent or 0.0) > IDLE_PERCENT:
            continue
        yield Recommendation(
            kind="idle_gpu",
            severity="low",
            subject=f"GPU {gpu.index}",
            title=f"GPU {gpu.index} is idle: no loaded model uses it",
            action="Place a model on it (split preset 'single'), give a model loaded elsewhere more context or "
            "slots with it, or power it down to save its idle draw.",
            effect=f"{(gpu.memory_free_mib or 0) / 1024:.1f} GiB of memory and its compute put to use.",
            evidence=(
                Evidence("utilisation %", gpu.utilization_percent, "nvml"),
                Evidence("memory free MiB", gpu.memory_free_mib, "nvml"),
                Evidence("idle power W", gpu.power_draw_w, "nvml"),
                Evidence("loaded models on it", 0, "engine"),
            ),
        )


# context ---------------------------------------------------------------------------------------------------


def context(model: ModelFacts, fit: ModelFit) -> Iterator[Recommendation]:
    ctx, parallel = model.profile.ctx, model.profile.parallel
    true_ctx = model.meta.context_length if model.meta else None
    if true_ctx and ctx > true_ctx:
        wasted = (ctx - true_ctx) * parallel * fit.need.kv_per_cell_mib
        yield Recommendation(
            kind="context_beyond_model",
            severity="medium",
            subject=model.name,
            title=f"{model.name}: ctx {ctx} per slot is beyond the model's true context of {true_ctx}",
            action=f"Set ctx: {true_ctx} (or less) in its profile.",
            effect=f"Frees {wasted:.0f} MiB of KV cache; the model degrades past the context it was trained for.",
            evidence=(
                Evidence("ctx per slot", ctx, "config"),
                Evidence("true context", true_ctx, "gguf"),
                Evidence("KV MiB per token", round(fit.need.kv_per_cell_mib, 4), "estimate"),
            ),
        )
    if model.ollama_num_ctx and ctx < model.ollama_num_ctx:
        yield Recommendation(
            kind="context_below_ollama",
            severity="low",
            subject=model.name,
            title=f"{model.name}: Ollama's num_ctx is {model.ollama_num_ctx}, llmhost serves {ctx} per slot",
            action=f"Set ctx: {model.ollama_num_ctx} in its profile if clients rely on Ollama's context.",
            effect="Prompts that fit in Ollama fit here too instead of being rejected or cut.",
            evidence=(Evidence("num_ctx", model.ollama_num_ctx, "ollama"), Evidence("ctx per slot", ctx, "config")),
        )
    yield from short_slots(model)


def request_tokens_p95(model: ModelFacts) -> int | None:
    sizes = [(g.prompt_tokens or 0) + (g.completion_tokens or 0) for g in model.generations if g.prompt_tokens]
    if len(sizes) < 2:
        return sizes[0] if sizes else None
    return round(statistics.quantiles(sizes, n=20, method="inclusive")[-1])


def short_slots(model: ModelFacts) -> Iterator[Recommendation]:
    ctx, parallel = model.profile.ctx, model.profile.parallel
    p95 = request_tokens_p95(model)
    measured_short = p95 is not None and p95 >= SLOT_FULL_SHARE * ctx
    if not measured_short and ctx >= MIN_SLOT_CTX:
        return
    fewer = max(parallel // 2, 1)
    action = f"Use parallel: {fewer} with ctx: {ctx * parallel // fewer} (the same KV memory)"
    if parallel == 1:
        action = "Raise ctx (see the fit table for what fits)"
    evidence = [Evidence("ctx per slot", ctx, "config"), Evidence("slots", parallel, "config")]
    if p95 is not None:
        evidence.append(Evidence("p95 tokens per request (prompt + completion)", p95, "telemetry"))
    else:
        evidence.append(Evidence("usual minimum for chat", MIN_SLOT_CTX, "config"))
    yield Recommendation(
        kind="slots_short_of_context",
        severity="medium" if measured_short else "low",
        subject=model.name,
        title=f"{model.name}: {parallel} slot{'s' if parallel > 1 else ''} of {ctx} tokens each may be too small",
        action=action + ".",
        effect="Long prompts and conversations fit in one slot instead of failing with a context error.",
        evidence=tuple(evidence),
    )


# all -------------------------------------------------------------------------------------------------------


def recommendations(facts: Facts, fits: list[ModelFit], capacity: dict[str, float]) -> list[Recommendation]:
    found: list[Recommendation] = []
    for gpu in facts.gpus:
        found += [*pcie(gpu), *throttling(gpu)]
    used: set[int] = set()
    for model, fit in zip(facts.models, fits, strict=True):
        if model.loaded:
            used |= set(model_gpus(model, fit)[0])
        found += [*does_not_fit(model, fit, capacity), *cpu_while_gpu_fits(model, fit, len(facts.gpus))]
        found += [*engine_on_cpu(model, fit), *split_fits_on_one(model, fit), *context(model, fit)]
    found += idle_gpus(facts, used)
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(found, key=lambda r: order[r.severity])

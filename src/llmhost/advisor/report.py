"""The advisor's report: everything computed from one set of facts, and its JSON shape.

``Report.to_dict()``::

    {
      "generated_at": unix seconds, "source": "service" | "offline", "window_s": seconds of telemetry used,
      "notes": [str],                                   # e.g. what offline mode cannot know
      "gpus": [{"index", "name", "memory_total_mib", "unified_memory", "pcie_now", "pcie_max",
                "link_share", "temperature_c", "power_draw_w", "power_limit_w", "utilization_percent"}],
      "no_gpu_reason": str | null,
      "host": {"memory_total_mib", "capacity_mib"},
      "score": {"value": 0-100 | null, "parts": [{"key", "measures", "max_points", "points", "applies",
                                                  "lost_because": [str]}]},
      "recommendations": [{"kind", "severity", "subject", "title", "action", "effect",
                           "evidence": [{"what", "value", "source"}]}],
      "fit": [{"model", "need": {"weights_mib", "kv_mib", "compute_mib", "attention_scores_mib", "total_mib",
                                 "kv_mib_per_token", "ctx_per_slot", "slots", "flash_attention",
                                 "kv_q8_0_frees_mib", "kv_q4_0_frees_mib", "flash_attention_frees_mib"},
               "configured": {"devices_mib": {device: MiB}, "fits": bool, "engine_mib": {device: MiB} | null},
               "sets": [{"label", "devices", "fits", "tensor_split", "split_mode", "main_gpu", "need_mib",
                         "capacity_mib", "free_after_mib", "context_tokens", "context_per_slot", "note"}]}],
      "efficiency": {"currency", "electricity_price_per_kwh",
                     "models": [{"model", "gpus", "gpus_from", "power_w", "power_basis", "tokens_per_second",
                                 "requests", "joules_per_token", "kwh_per_million_tokens",
                                 "cost_per_million_tokens", "not_measured", "shared_with"}],
                     "api_prices": [{"name", "input_per_m", "output_per_m"}]},
      "contexts": [{"model", "true_context", "ollama_num_ctx", "ctx_per_slot", "slots", "total_context"}]
    }
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llmhost.advisor.efficiency import Efficiency, efficiencies
from llmhost.advisor.facts import Facts, ModelFacts
from llmhost.advisor.fit import ModelFit, SetFit, capacities, fits, host_capacity
from llmhost.advisor.recommend import Recommendation, link_gbps, link_share, recommendations
from llmhost.advisor.score import Score, score
from llmhost.telemetry.gpu import GpuSample


@dataclass(frozen=True, slots=True)
class Report:
    facts: Facts
    fits: tuple[ModelFit, ...]
    recommendations: tuple[Recommendation, ...]
    score: Score
    efficiency: tuple[Efficiency, ...]
    generated_at: float

    def to_dict(self) -> dict[str, Any]:
        facts = self.facts
        return {
            "generated_at": self.generated_at,
            "source": "service" if facts.measured else "offline",
            "window_s": facts.window_s,
            "notes": notes(facts),
            "gpus": [gpu_view(gpu) for gpu in facts.gpus],
            "no_gpu_reason": facts.gpu_error if not facts.gpus else None,
            "host": {"memory_total_mib": facts.host_total_mib, "capacity_mib": host_capacity(facts)},
            "score": self.score.to_dict(),
            "recommendations": [r.to_dict() for r in self.recommendations],
            "fit": [fit_view(model, fit) for model, fit in zip(facts.models, self.fits, strict=True)],
            "efficiency": {
                "currency": facts.settings.currency,
                "electricity_price_per_kwh": facts.settings.electricity_price_per_kwh,
                "models": [e.to_dict() for e in self.efficiency],
                "api_prices": [
                    {"name": name, "input_per_m": price.input_per_m, "output_per_m": price.output_per_m}
                    for name, price in facts.settings.api_prices.items()
                ],
            },
            "contexts": [context_view(model) for model in facts.models],
        }


def build(facts: Facts, now: float | None = None) -> Report:
    fitted = fits(facts)
    recs = recommendations(facts, fitted, capacities(facts))
    return Report(
        facts=facts,
        fits=tuple(fitted),
        recommendations=tuple(recs),
        score=score(facts, fitted, recs),
        efficiency=tuple(efficiencies(facts, fitted)),
        generated_at=time.time() if now is None else now,
    )


def notes(facts: Facts) -> list[str]:
    found = ["Memory figures are estimates from GGUF metadata until an engine reports its own buffers."]
    if not facts.measured:
        found.append("Offline: no service answered, so loaded engines, idle GPUs and measured efficiency are unknown.")
    return found


def gpu_view(gpu: GpuSample) -> dict[str, Any]:
    return {
        "index": gpu.index,
        "name": gpu.name,
        "memory_total_mib": gpu.memory_total_mib,
        "memory_free_mib": gpu.memory_free_mib,
        "unified_memory": gpu.unified_memory,
        "pcie_now": None if gpu.pcie_gen is None else f"Gen {gpu.pcie_gen} x{gpu.pcie_width}",
        "pcie_max": None if gpu.pcie_gen_max is None else f"Gen {gpu.pcie_gen_max} x{gpu.pcie_width_max}",
        "pcie_gbps": link_gbps(gpu.pcie_gen, gpu.pcie_width),
        "pcie_max_gbps": link_gbps(gpu.pcie_gen_max, gpu.pcie_width_max),
        "link_share": link_share(gpu),
        "utilization_percent": gpu.utilization_percent,
        "temperature_c": gpu.temperature_c,
        "power_draw_w": gpu.power_draw_w,
        "power_limit_w": gpu.power_limit_w,
    }


def _round(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 1) for key, value in values.items()}


def set_view(fit: SetFit) -> dict[str, Any]:
    device_set = fit.device_set
    return {
        "label": device_set.label,
        "devices": list(device_set.devices),
        "fits": fit.fits,
        "tensor_split": device_set.tensor_split,
        "split_mode": device_set.split_mode,
        "main_gpu": device_set.main_gpu,
        "need_mib": _round(fit.need_mib),
        "capacity_mib": _round(device_set.capacity_mib),
        "free_after_mib": round(fit.free_after_mib, 1),
        "context_tokens": fit.context_tokens,
        "context_per_slot": fit.context_per_slot,
        "note": device_set.note,
    }


def fit_view(model: ModelFacts, fit: ModelFit) -> dict[str, Any]:
    need = fit.need
    return {
        "model": model.name,
        "need": {
            "weights_mib": round(need.weights_mib, 1),
            "kv_mib": round(need.kv_mib, 1),
            "compute_mib": round(need.compute_mib, 1),
            "attention_scores_mib": round(need.scores_mib, 1),
            "total_mib": round(need.total_mib, 1),
            "kv_mib_per_token": need.kv_per_cell_mib,
            "ctx_per_slot": model.profile.ctx,
            "slots": model.profile.parallel,
            "flash_attention": need.flash_attention,
            "kv_q8_0_frees_mib": round(need.kv_q8_0_saves_mib, 1),
            "kv_q4_0_frees_mib": round(need.kv_q4_0_saves_mib, 1),
            "flash_attention_frees_mib": round(need.flash_attention_saves_mib, 1),
        },
        "configured": {
            "devices_mib": _round(fit.configured_devices),
            "fits": fit.configured_fits,
            "engine_mib": _round(model.charges_mib) if model.charges_reported else None,
        },
        "sets": [set_view(s) for s in fit.sets],
    }


def context_view(model: ModelFacts) -> dict[str, Any]:
    profile = model.profile
    return {
        "model": model.name,
        "true_context": model.meta.context_length if model.meta else None,
        "ollama_num_ctx": model.ollama_num_ctx,
        "ctx_per_slot": profile.ctx,
        "slots": profile.parallel,
        "total_context": profile.ctx * profile.parallel,
    }

"""Efficiency: measured energy per generated token (GPU power from NVML / the model's measured tokens per
second) and, at the user's electricity price, the cost of a million tokens next to hosted API prices.
Nothing is estimated here: a figure that was not measured is None with the reason."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from llmhost.advisor.facts import Facts, ModelFacts, PowerReading
from llmhost.advisor.fit import ModelFit
from llmhost.advisor.recommend import model_gpus

JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class Efficiency:
    model: str
    gpus: tuple[int, ...]
    gpus_from: str  # engine (its buffer report) or config (the configured placement)
    power_w: float | None
    power_basis: str | None  # "during generation" or "latest sample"
    tokens_per_second: float | None  # median generation speed of the model's requests in the window
    requests: int
    joules_per_token: float | None  # watts per (token per second)
    kwh_per_million: float | None
    cost_per_million: float | None
    not_measured: str | None  # why a figure is missing
    shared_with: tuple[str, ...] = ()  # other loaded models on the same GPUs (their power is not split)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "gpus": list(self.gpus),
            "gpus_from": self.gpus_from,
            "power_w": self.power_w,
            "power_basis": self.power_basis,
            "tokens_per_second": self.tokens_per_second,
            "requests": self.requests,
            "joules_per_token": self.joules_per_token,
            "kwh_per_million_tokens": self.kwh_per_million,
            "cost_per_million_tokens": self.cost_per_million,
            "not_measured": self.not_measured,
            "shared_with": list(self.shared_with),
        }


def median_speed(model: ModelFacts) -> float | None:
    speeds = [g.tokens_per_second for g in model.generations if g.tokens_per_second]
    return statistics.median(speeds) if speeds else None


def power_of(gpus: tuple[int, ...], model: ModelFacts, history: tuple[PowerReading, ...]) -> tuple[float | None, str]:
    """Mean summed draw of the model's GPUs over the samples taken while it generated, else the latest sample."""
    spans = [(g.started_at, g.started_at + g.duration_s) for g in model.generations]
    during = [r for r in history if any(start <= r.ts <= end for start, end in spans)]
    readings, basis = (during, "during generation") if during else (list(history[-1:]), "latest sample")
    totals = [sum(r.watts[i] for i in gpus) for r in readings if all(i in r.watts for i in gpus)]
    return (statistics.fmean(totals), basis) if totals else (None, basis)


def efficiency(model: ModelFacts, fit: ModelFit, facts: Facts, sharing: dict[int, list[str]]) -> Efficiency:
    gpus_list, source = model_gpus(model, fit)
    gpus = tuple(gpus_list)
    speed = median_speed(model)
    power, basis = power_of(gpus, model, facts.power_history) if gpus else (None, None)
    reason = _missing(facts, gpus, power, speed)
    joules = power / speed if power is not None and speed and reason is None else None
    kwh = joules * 1e6 / JOULES_PER_KWH if joules is not None else None
    price = facts.settings.electricity_price_per_kwh
    if kwh is not None and price is None:
        reason = "no electricity price set (advisor.electricity_price_per_kwh)"
    shared = sorted({other for i in gpus for other in sharing.get(i, []) if other != model.name})
    return Efficiency(
        model=model.name,
        gpus=gpus,
        gpus_from=source,
        power_w=power,
        power_basis=basis if power is not None else None,
        tokens_per_second=speed,
        requests=len(model.generations),
        joules_per_token=joules,
        kwh_per_million=kwh,
        cost_per_million=kwh * price if kwh is not None and price is not None else None,
        not_measured=reason,
        shared_with=tuple(shared),
    )


def _missing(facts: Facts, gpus: tuple[int, ...], power: float | None, speed: float | None) -> str | None:
    if not facts.measured:
        return "not measured: needs the running service (telemetry of served requests)"
    if not gpus:
        return "not measured: the model runs on the CPU, whose power NVML does not report"
    if power is None:
        return "not measured: the GPU does not report its power draw"
    if speed is None:
        return "not measured: no finished request of this model in the window"
    return None


def efficiencies(facts: Facts, fits: list[ModelFit]) -> list[Efficiency]:
    sharing: dict[int, list[str]] = {}
    for model, fit in zip(facts.models, fits, strict=True):
        if model.loaded:
            for index in model_gpus(model, fit)[0]:
                sharing.setdefault(index, []).append(model.name)
    return [efficiency(m, f, facts, sharing) for m, f in zip(facts.models, fits, strict=True)]

"""The hardware optimization score (0-100): a sum of parts, each saying what it measures, its points, and
why it lost points. Parts that cannot apply (no GPU, nothing measured) are listed but left out of the score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmhost.advisor.facts import Facts
from llmhost.advisor.fit import ModelFit
from llmhost.advisor.recommend import Recommendation, gpus_of, link_share

CONTEXT_KINDS = frozenset({"context_beyond_model", "context_below_ollama", "slots_short_of_context"})
THERMAL_KINDS = frozenset({"thermal_throttling", "power_limited"})
FIT_KINDS = frozenset({"does_not_fit", "cpu_while_gpu_fits", "engine_on_cpu"})


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    measures: str
    max_points: float
    points: float | None  # None: does not apply here
    lost_because: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "measures": self.measures,
            "max_points": self.max_points,
            "points": None if self.points is None else round(self.points, 2),
            "applies": self.points is not None,
            "lost_because": list(self.lost_because),
        }


@dataclass(frozen=True, slots=True)
class Score:
    value: int | None  # None when no part applies
    parts: tuple[Part, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "parts": [part.to_dict() for part in self.parts]}


def _subjects(recs: list[Recommendation], kinds: frozenset[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rec in recs:
        if rec.kind in kinds:
            found.setdefault(rec.subject, []).append(rec.title)
    return found


def _share_part(key: str, measures: str, max_points: float, total: int, flagged: dict[str, list[str]]) -> Part:
    if total == 0:
        return Part(key, measures, max_points, None)
    reasons = tuple(title for titles in flagged.values() for title in titles)
    return Part(key, measures, max_points, max_points * (1 - len(flagged) / total), reasons)


def pcie_part(facts: Facts, recs: list[Recommendation]) -> Part:
    shares = [s for s in map(link_share, facts.gpus) if s is not None]
    measures = "PCIe links: each GPU's link bandwidth as a share of its maximum (generation judged only under load)"
    if not shares:
        return Part("pcie", measures, 20, None)
    reasons = tuple(r.title for r in recs if r.kind == "pcie_link_below_max")
    return Part("pcie", measures, 20, 20 * sum(shares) / len(shares), reasons)


def placement_part(facts: Facts, fits: list[ModelFit], recs: list[Recommendation]) -> Part:
    split = sum(1 for fit in fits if len(gpus_of(fit.configured_devices)) > 1)
    measures = "placement: models split across GPUs although one GPU would hold them"
    total = split if len(facts.gpus) > 1 else 0
    return _share_part("placement", measures, 20, total, _subjects(recs, frozenset({"split_fits_on_one_gpu"})))


def gpu_use_part(facts: Facts, recs: list[Recommendation]) -> Part:
    measures = "GPU use: GPUs with a loaded model on them or busy (needs the running service)"
    total = len(facts.gpus) if facts.measured else 0
    return _share_part("gpu_use", measures, 15, total, _subjects(recs, frozenset({"idle_gpu"})))


def thermal_part(facts: Facts, recs: list[Recommendation]) -> Part:
    measures = "heat and power: GPUs running near their temperature or enforced power limit"
    total = sum(1 for g in facts.gpus if g.temperature_c is not None or g.power_draw_w is not None)
    return _share_part("thermal_power", measures, 15, total, _subjects(recs, THERMAL_KINDS))


def fit_part(facts: Facts, recs: list[Recommendation]) -> Part:
    measures = "memory fit: models that fit where they are configured, on the devices meant for them"
    return _share_part("memory_fit", measures, 20, len(facts.models), _subjects(recs, FIT_KINDS))


def context_part(facts: Facts, recs: list[Recommendation]) -> Part:
    measures = "context: per-slot context within the model's true context and large enough for the requests"
    return _share_part("context", measures, 10, len(facts.models), _subjects(recs, CONTEXT_KINDS))


def score(facts: Facts, fits: list[ModelFit], recs: list[Recommendation]) -> Score:
    parts = (
        pcie_part(facts, recs),
        placement_part(facts, fits, recs),
        gpu_use_part(facts, recs),
        thermal_part(facts, recs),
        fit_part(facts, recs),
        context_part(facts, recs),
    )
    applying = [p for p in parts if p.points is not None]
    if not applying:
        return Score(None, parts)
    earned = sum(p.points or 0.0 for p in applying)
    return Score(round(100 * earned / sum(p.max_points for p in applying)), parts)

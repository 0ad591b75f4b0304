"""Which target serves a request when a model is served by several (local engine, remote providers).

Healthy targets first (an unhealthy one is only a last resort), higher priority first, then the least
outstanding requests per unit of weight; equal loads are broken by weighted random choice, so at low load
the weights decide each target's share (Efraimidis-Spirakis keys).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str  # "local" or a provider's name
    outstanding: int
    weight: float = 1.0
    priority: int = 0
    healthy: bool = True


def order(candidates: Sequence[Candidate], rng: random.Random | None = None) -> list[Candidate]:
    draw = (rng or random).random

    def sort_key(candidate: Candidate) -> tuple[bool, int, float, float]:
        tie = -(draw() ** (1.0 / candidate.weight))
        return (not candidate.healthy, -candidate.priority, candidate.outstanding / candidate.weight, tie)

    return sorted(candidates, key=sort_key)

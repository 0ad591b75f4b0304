"""Target order for a model served by several targets: health, priority, load per weight, weighted ties."""

from __future__ import annotations

import random
from collections import Counter

from llmhost.routing import Candidate, order


def keys(candidates: list[Candidate]) -> list[str]:
    return [c.key for c in candidates]


def test_unhealthy_targets_go_last_whatever_their_load() -> None:
    ranked = order([Candidate("sick", 0, healthy=False), Candidate("busy", 5)])
    assert keys(ranked) == ["busy", "sick"]


def test_priority_before_load() -> None:
    assert keys(order([Candidate("idle", 0), Candidate("preferred", 3, priority=1)]))[0] == "preferred"


def test_least_outstanding_per_weight_first() -> None:
    ranked = order([Candidate("a", 4, weight=1), Candidate("b", 4, weight=4), Candidate("c", 2, weight=1)])
    assert keys(ranked) == ["b", "c", "a"]  # 1.0, 2.0, 4.0 outstanding per unit of weight


def test_weights_set_the_share_when_idle() -> None:
    rng = random.Random(7)
    firsts = Counter(
        order([Candidate("big", 0, weight=3), Candidate("small", 0, weight=1)], rng)[0].key for _ in range(4000)
    )
    assert 0.72 < firsts["big"] / 4000 < 0.78  # 3:1

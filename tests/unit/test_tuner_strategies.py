"""Strategies: grid enumerates, random covers the space once, TPE stays in bounds, learns, and resumes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmhost.tuner.space import SearchSpace
from llmhost.tuner.strategies import (
    FAILED,
    GridStrategy,
    RandomStrategy,
    Strategy,
    TpeStrategy,
    make_strategy,
    strategy_from_state,
)

SPACE = SearchSpace.from_dict(
    {"parameters": {"parallel": [1, 2, 4, 8], "batch": [64, 256, 512], "flash_attn": ["auto", "on"]}}
)


def drain(strategy: Strategy, limit: int = 1000) -> list[dict[str, Any]]:
    points = []
    while (params := strategy.suggest()) is not None and len(points) < limit:
        points.append(params)
    return points


def in_space(params: dict[str, Any], space: SearchSpace = SPACE) -> bool:
    return all(params[p.name] in p.values for p in space.params) and set(params) == set(space.names)


def test_grid_enumerates_every_point_in_order() -> None:
    points = drain(GridStrategy(SPACE))
    assert len(points) == SPACE.size == 24
    assert points == [SPACE.point(p) for p in SPACE.grid()]


def test_random_covers_the_space_once_in_a_seeded_order() -> None:
    first = drain(RandomStrategy(SPACE, seed=1))
    assert len(first) == 24 and all(in_space(p) for p in first)
    assert len({json.dumps(p, sort_keys=True) for p in first}) == 24
    assert first != drain(GridStrategy(SPACE))
    assert first == drain(RandomStrategy(SPACE, seed=1))
    assert first != drain(RandomStrategy(SPACE, seed=2))


@pytest.mark.parametrize("name", ["grid", "random"])
def test_ordered_strategies_resume_where_they_were(name: str) -> None:
    strategy = make_strategy(name, SPACE, seed=3)
    head = [strategy.suggest() for _ in range(5)]
    for params in head:
        assert params is not None
        strategy.tell(params, float(params["parallel"]))
    state = json.loads(json.dumps(strategy.state()))  # the state is plain JSON
    restored = strategy_from_state(SPACE, state)
    assert restored.state() == state
    assert [*head, *drain(restored)] == drain(make_strategy(name, SPACE, seed=3))
    best = restored.best()
    assert best is not None and best.value == max(float(p["parallel"]) for p in head if p)


def throughput(params: dict[str, Any]) -> float:
    """A toy landscape: more slots and bigger batches are better; flash attention adds a little."""
    return params["parallel"] * 10 + params["batch"] / 64 + (1 if params["flash_attn"] == "on" else 0)


def test_tpe_suggests_within_bounds_and_round_trips() -> None:
    strategy = TpeStrategy(SPACE, "maximize", seed=0)
    for _ in range(12):
        params = strategy.suggest()
        assert params is not None and in_space(params)
        strategy.tell(params, throughput(params), {"slo_ttft": -0.5})
    state = json.loads(json.dumps(strategy.state()))
    assert state["name"] == "tpe" and state["asked"] == 12 and len(state["history"]) == 12
    restored = strategy_from_state(SPACE, state)
    assert isinstance(restored, TpeStrategy)
    assert restored.state() == state
    assert restored.best() == strategy.best()
    assert len(restored._study.trials) == 12  # the history is replayed into a new study
    params = restored.suggest()
    assert params is not None and in_space(params)
    restored.tell(params, throughput(params))
    assert restored.state()["asked"] == 13


def test_tpe_finds_the_optimum_of_a_toy_landscape() -> None:
    strategy = TpeStrategy(SPACE, "maximize", seed=0)
    seen = []
    for _ in range(16):
        params = strategy.suggest()
        assert params is not None
        seen.append(params)
        strategy.tell(params, throughput(params))
    late = seen[8:]
    assert sum(p["parallel"] >= 4 for p in late) >= 6  # after the random start-up it exploits the good region


def test_tpe_steers_away_from_failures_and_infeasible_points() -> None:
    strategy = TpeStrategy(SPACE, "maximize", seed=1)
    suggestions = []
    for _ in range(30):
        params = strategy.suggest()
        assert params is not None
        suggestions.append(params)
        if params["parallel"] == 8:  # the engine crashes with 8 slots
            strategy.tell(params, None)
        elif params["batch"] == 512:  # misses an SLO
            strategy.tell(params, throughput(params), {"slo_ttft": 0.5})
        else:
            strategy.tell(params, throughput(params), {"slo_ttft": -0.1})
    failed = [o for o in strategy.history if o.value is None]
    assert all(o.constraints == {FAILED: 1.0} for o in failed)
    late = suggestions[15:]
    assert sum(p["parallel"] == 8 or p["batch"] == 512 for p in late) <= 5
    best = strategy.best()
    assert best is not None and best.feasible
    assert SPACE.point(best.point)["parallel"] == 4 and SPACE.point(best.point)["batch"] == 256


def test_minimising_strategies_pick_the_lowest() -> None:
    strategy = GridStrategy(SPACE, "minimize")
    for params in drain(strategy):
        strategy.tell(params, throughput(params))
    best = strategy.best()
    assert best is not None and best.value == throughput({"parallel": 1, "batch": 64, "flash_attn": "auto"})


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("annealing", SPACE)

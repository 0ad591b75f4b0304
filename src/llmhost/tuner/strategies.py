"""Search strategies behind one interface: ``suggest`` a point, ``tell`` its result, ``state`` / ``from_state``.

A result is the objective value (None when the trial failed: the engine did not start, crashed, or a known
constraint ruled the point out) and constraint values (a point is feasible when every one is <= 0). ``state()`` is
plain JSON; ``from_state`` rebuilds an equivalent strategy, so a job resumes after a restart.

- grid: every point in order.
- random: every point once, in a seeded random order.
- tpe: Optuna's TPE sampler (multivariate; constraints through ``Trial.set_constraint``, which Optuna 5 uses in
  place of the deprecated ``constraints_func``), so failed and SLO-violating points are steered away from.
  Numeric values are modelled as ordered (the index into the value list), others as categories.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from llmhost.tuner.space import SearchSpace

Direction = Literal["maximize", "minimize"]
FAILED = "failed"  # the constraint a failed trial violates
TPE_STARTUP_TRIALS = 5


@dataclass(frozen=True, slots=True)
class Observation:
    point: tuple[int, ...]
    value: float | None  # None: the trial failed
    constraints: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.value is not None and all(v <= 0 for v in self.constraints.values())

    def to_dict(self) -> dict[str, Any]:
        return {"point": list(self.point), "value": self.value, "constraints": self.constraints}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        return cls(tuple(data["point"]), data["value"], dict(data.get("constraints") or {}))


class Strategy(ABC):
    name: ClassVar[str]

    def __init__(self, space: SearchSpace, direction: Direction = "maximize", seed: int = 0) -> None:
        self.space = space
        self.direction = direction
        self.seed = seed
        self.history: list[Observation] = []

    @abstractmethod
    def suggest(self) -> dict[str, Any] | None:
        """The next parameters to try; None when the strategy has nothing left to suggest."""

    def tell(
        self, params: Mapping[str, Any], value: float | None, constraints: Mapping[str, float] | None = None
    ) -> None:
        observation = Observation(self.space.indices(params), value, dict(constraints or {}))
        if value is None:
            observation.constraints.setdefault(FAILED, 1.0)
        self.history.append(observation)
        self._told(observation)

    def _told(self, observation: Observation) -> None:  # noqa: B027 - optional hook
        """Hook for strategies that learn from results."""

    def best(self) -> Observation | None:
        feasible = [o for o in self.history if o.feasible and o.value is not None]
        if not feasible:
            return None
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(feasible, key=lambda o: sign * (o.value or 0.0))

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": self.direction,
            "seed": self.seed,
            "history": [o.to_dict() for o in self.history],
            **self._extra_state(),
        }

    def _extra_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, space: SearchSpace, state: Mapping[str, Any]) -> Strategy:
        strategy = cls(space, state["direction"], state["seed"])
        strategy._restore(state, [Observation.from_dict(o) for o in state["history"]])
        return strategy

    def _restore(self, state: Mapping[str, Any], history: list[Observation]) -> None:
        self.history = history


class OrderedStrategy(Strategy):
    """Walks a fixed order of every point; ``cursor`` is how many were suggested."""

    def __init__(self, space: SearchSpace, direction: Direction = "maximize", seed: int = 0) -> None:
        super().__init__(space, direction, seed)
        self.cursor = 0

    @abstractmethod
    def _flat_index(self, position: int) -> int: ...

    def suggest(self) -> dict[str, Any] | None:
        if self.cursor >= self.space.size:
            return None
        flat = self._flat_index(self.cursor)
        self.cursor += 1
        indices = tuple(int(i) for i in np.unravel_index(flat, self.space.shape))
        return self.space.point(indices)

    def _extra_state(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    def _restore(self, state: Mapping[str, Any], history: list[Observation]) -> None:
        super()._restore(state, history)
        self.cursor = int(state["cursor"])


class GridStrategy(OrderedStrategy):
    name = "grid"

    def _flat_index(self, position: int) -> int:
        return position


class RandomStrategy(OrderedStrategy):
    """Sampling without replacement: a seeded permutation of the grid."""

    name = "random"

    def __init__(self, space: SearchSpace, direction: Direction = "maximize", seed: int = 0) -> None:
        super().__init__(space, direction, seed)
        self._order = np.random.default_rng(seed).permutation(space.size)

    def _flat_index(self, position: int) -> int:
        return int(self._order[position])


class TpeStrategy(Strategy):
    name = "tpe"

    def __init__(self, space: SearchSpace, direction: Direction = "maximize", seed: int = 0) -> None:
        super().__init__(space, direction, seed)
        self.asked = 0
        self._pending: dict[tuple[int, ...], optuna.trial.Trial] = {}
        self._distributions = index_distributions(space)
        self._study = self._new_study(seed)

    def _new_study(self, seed: int) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP_TRIALS, multivariate=True, seed=seed)
        return optuna.create_study(direction=self.direction, sampler=sampler)

    def suggest(self) -> dict[str, Any] | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self._study.ask(self._distributions)
        self.asked += 1
        point = tuple(int(trial.params[name]) for name in self.space.names)
        self._pending[point] = trial
        return self.space.point(point)

    def _told(self, observation: Observation) -> None:
        value = observation.value if observation.value is not None else self._worst_value()
        trial = self._pending.pop(observation.point, None)
        if trial is None:
            self._study.add_trial(self._frozen(observation, value))
            return
        for key, constraint in observation.constraints.items():
            trial.set_constraint(key, constraint)
        self._study.tell(trial, value)

    def _frozen(self, observation: Observation, value: float) -> optuna.trial.FrozenTrial:
        params = dict(zip(self.space.names, observation.point, strict=True))
        return optuna.trial.create_trial(
            params=params, distributions=self._distributions, value=value, constraints=observation.constraints
        )

    def _worst_value(self) -> float:
        """What a failed trial scores; infeasibility, not this value, is what ranks it last."""
        values = [o.value for o in self.history if o.value is not None and math.isfinite(o.value)]
        if not values:
            return 0.0
        return min(values) if self.direction == "maximize" else max(values)

    def _extra_state(self) -> dict[str, Any]:
        return {"asked": self.asked}

    def _restore(self, state: Mapping[str, Any], history: list[Observation]) -> None:
        self.asked = int(state.get("asked", 0))
        self._study = self._new_study(self.seed + self.asked)  # a fresh stream: do not replay the same asks
        for observation in history:
            self.history.append(observation)
            self._told(observation)


def index_distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """Each parameter as an index into its values: ordered for numbers, a category otherwise."""
    return {
        param.name: IntDistribution(0, len(param.values) - 1)
        if param.ordinal
        else CategoricalDistribution(list(range(len(param.values))))
        for param in space.params
    }


STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (GridStrategy, RandomStrategy, TpeStrategy)}


def make_strategy(name: str, space: SearchSpace, direction: Direction = "maximize", seed: int = 0) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name](space, direction, seed)


def strategy_from_state(space: SearchSpace, state: Mapping[str, Any]) -> Strategy:
    return STRATEGIES[state["name"]].from_state(space, state)

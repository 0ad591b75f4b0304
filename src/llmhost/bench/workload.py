"""What a benchmark sends: input/output length distributions (genai-bench notation) and load levels.

Lengths: ``D(in,out)`` deterministic; ``N(mean_in,sd_in)/(mean_out,sd_out)`` normal, clipped to [1, mean + 3 sd];
``U(min_in,max_in)/(min_out,max_out)`` uniform (``U(max_in,max_out)`` means a minimum of 1).
Levels: closed loop (``concurrency`` users, each sends its next request when the last one ends) or open loop
(Poisson arrivals at ``rate`` requests per second, optionally capped at ``max_concurrency`` in flight).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

LengthKind = Literal["D", "N", "U"]
NOTATION = re.compile(r"^\s*(?P<kind>[DNU])\((?P<first>[^)]*)\)(?:\s*/\s*\((?P<second>[^)]*)\))?\s*$")


@dataclass(frozen=True, slots=True)
class LengthSpec:
    """Token lengths of prompts and answers; ``input``/``output`` hold the distribution's two parameters."""

    kind: LengthKind
    input: tuple[float, float]
    output: tuple[float, float]

    @classmethod
    def fixed(cls, input_tokens: int, output_tokens: int) -> LengthSpec:
        return cls("D", (input_tokens, input_tokens), (output_tokens, output_tokens))

    @classmethod
    def parse(cls, text: str) -> LengthSpec:
        match = NOTATION.match(text)
        if match is None:
            raise ValueError(f"{text!r}: expected D(in,out), N(mean,sd)/(mean,sd) or U(min,max)/(min,max)")
        kind: LengthKind = match["kind"]  # type: ignore[assignment]
        first = _numbers(match["first"], text)
        second = _numbers(match["second"], text) if match["second"] is not None else None
        if kind == "D":
            if second is not None:
                raise ValueError(f"{text!r}: D takes one pair, D(in,out)")
            spec = cls.fixed(int(first[0]), int(first[1]))
        elif second is None:
            if kind == "N":
                raise ValueError(f"{text!r}: N needs N(mean_in,sd_in)/(mean_out,sd_out)")
            spec = cls("U", (1, first[0]), (1, first[1]))
        else:
            spec = cls(kind, first, second)
        spec.validate()
        return spec

    def validate(self) -> None:
        for low, high in (self.input, self.output):
            if self.kind == "N" and (low < 1 or high < 0):
                raise ValueError(f"{self}: N needs a mean of at least 1 and a non-negative sd")
            if self.kind != "N" and not 1 <= low <= high:
                raise ValueError(f"{self}: lengths must be at least 1 and ordered (min <= max)")

    def __str__(self) -> str:
        if self.kind == "D":
            return f"D({self.input[0]:g},{self.output[0]:g})"
        return f"{self.kind}({self.input[0]:g},{self.input[1]:g})/({self.output[0]:g},{self.output[1]:g})"

    def max_input(self) -> int:
        return _upper(self.kind, self.input)

    def max_output(self) -> int:
        return _upper(self.kind, self.output)

    def context_need(self) -> int:
        """Tokens one slot must hold for the longest request this spec can produce."""
        return self.max_input() + self.max_output()

    def sample(self, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
        """``count`` (input, output) pairs."""
        inputs = _draw(self.kind, self.input, rng, count)
        outputs = _draw(self.kind, self.output, rng, count)
        return list(zip(inputs, outputs, strict=True))


def _numbers(text: str, whole: str) -> tuple[float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{whole!r}: {text!r} is not two numbers") from None
    if len(values) != 2:
        raise ValueError(f"{whole!r}: {text!r} is not two numbers")
    return values[0], values[1]


def _upper(kind: LengthKind, params: tuple[float, float]) -> int:
    if kind == "N":
        return max(1, math.floor(params[0] + 3 * params[1]))
    return int(params[1])


def _draw(kind: LengthKind, params: tuple[float, float], rng: np.random.Generator, count: int) -> list[int]:
    if kind == "D":
        return [int(params[0])] * count
    if kind == "U":
        return [int(v) for v in rng.integers(int(params[0]), int(params[1]), size=count, endpoint=True)]
    values = np.rint(rng.normal(params[0], params[1], size=count))
    return [int(v) for v in np.clip(values, 1, _upper(kind, params))]


@dataclass(frozen=True, slots=True)
class Level:
    """One load level: closed loop at ``concurrency``, or open loop at ``rate`` requests per second."""

    concurrency: int | None = None
    rate: float | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("a level has either a concurrency or a rate")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")

    @property
    def kind(self) -> Literal["concurrency", "rate"]:
        return "concurrency" if self.concurrency is not None else "rate"

    @property
    def value(self) -> float:
        return float(self.concurrency if self.concurrency is not None else self.rate or 0.0)

    @property
    def label(self) -> str:
        if self.concurrency is not None:
            return f"c={self.concurrency}"
        cap = f" max {self.max_concurrency}" if self.max_concurrency else ""
        return f"{self.rate:g} req/s{cap}"

    @property
    def peak_in_flight(self) -> int | None:
        """Most requests this level can have in flight (None: unbounded)."""
        return self.concurrency if self.concurrency is not None else self.max_concurrency

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "rate": self.rate, "max_concurrency": self.max_concurrency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Level:
        return cls(data.get("concurrency"), data.get("rate"), data.get("max_concurrency"))


def poisson_offsets(rate: float, count: int, rng: np.random.Generator) -> list[float]:
    """Send times (seconds after the level starts) of a Poisson process; the first request goes at 0."""
    gaps = rng.exponential(1.0 / rate, size=max(count - 1, 0))
    return [0.0, *np.cumsum(gaps).tolist()][:count]

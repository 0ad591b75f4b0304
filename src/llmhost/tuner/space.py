"""The search space: llama-server parameters (``ModelProfile`` fields), each with a finite list of values.

Declared in YAML or built from a preset::

    preset: cpu                    # optional starting point; the keys below extend or override it
    parameters:
      parallel: [1, 2, 4, 8]
      batch: [64, 256]
      threads: {range: [1, 4]}     # 1, 2, 3, 4 (an optional third number is the step)
    fixed: {ctx: 1024}             # applied to every trial, the baseline included
    constraints: [ctx_fits_workload, ubatch_le_batch, quantized_v_needs_flash_attn]   # the default: all
    max_total_ctx: 65536           # optional: ctx x parallel

Known constraints are checked before an engine starts; a violating point is told to the strategy as infeasible
without spending a trial. Unknown ones (a crash, out of memory) are learnt from failed trials.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml
from pydantic import ValidationError

from llmhost.config import ModelProfile

TUNABLE = (
    "parallel",
    "ctx",
    "batch",
    "ubatch",
    "threads",
    "threads_batch",
    "gpu_layers",
    "flash_attn",
    "cache_type_k",
    "cache_type_v",
    "tensor_split",
    "split_mode",
    "main_gpu",
    "repack",
)
UNQUANTIZED_CACHE = (None, "f32", "f16", "bf16")


class SpaceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    values: tuple[Any, ...]

    @property
    def ordinal(self) -> bool:
        """Numbers are ordered (a model may interpolate between them); anything else is a category."""
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.values)

    def index(self, value: Any) -> int:
        wanted = _hashable(value)
        for position, candidate in enumerate(self.values):
            if candidate == wanted:
                return position
        raise SpaceError(f"{self.name}: {value!r} is not one of {list(self.values)}")


def _ctx_fits_workload(profile: ModelProfile, need: int) -> str | None:
    return f"ctx per slot {profile.ctx} < workload need {need}" if profile.ctx < need else None


def _ubatch_le_batch(profile: ModelProfile, need: int) -> str | None:
    """Both set and ubatch larger: llama.cpp would clamp it, a duplicate of ubatch = batch (an unset ubatch
    is clamped too, which is fine: nothing else would run that point)."""
    batch, ubatch = profile.batch, profile.ubatch
    if batch is not None and ubatch is not None and ubatch > batch:
        return f"ubatch {ubatch} > batch {batch} (llama.cpp clamps it)"
    return None


def _quantized_v_needs_flash_attn(profile: ModelProfile, need: int) -> str | None:
    if profile.cache_type_v not in UNQUANTIZED_CACHE and profile.flash_attn == "off":
        return f"cache_type_v {profile.cache_type_v} needs flash attention"
    return None


CONSTRAINTS: dict[str, Callable[[ModelProfile, int], str | None]] = {
    "ctx_fits_workload": _ctx_fits_workload,
    "ubatch_le_batch": _ubatch_le_batch,
    "quantized_v_needs_flash_attn": _quantized_v_needs_flash_attn,
}


@dataclass(frozen=True, slots=True)
class SearchSpace:
    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    constraints: tuple[str, ...] = tuple(CONSTRAINTS)
    max_total_ctx: int | None = None

    def __post_init__(self) -> None:
        names = [param.name for param in self.params]
        if not names:
            raise SpaceError("the search space has no parameters")
        if len(set(names)) != len(names):
            raise SpaceError(f"parameters appear twice: {names}")
        if set(names) & set(self.fixed):
            raise SpaceError(f"parameters both searched and fixed: {sorted(set(names) & set(self.fixed))}")
        for name in [*names, *self.fixed]:
            if name not in TUNABLE:
                raise SpaceError(f"{name!r} is not a tunable parameter; choose from {', '.join(TUNABLE)}")
        for param in self.params:
            if not param.values:
                raise SpaceError(f"{param.name}: no values")
            for value in param.values:
                _check_value(param.name, value)
        for name in self.constraints:
            if name not in CONSTRAINTS:
                raise SpaceError(f"unknown constraint {name!r}; known: {', '.join(CONSTRAINTS)}")

    @property
    def names(self) -> list[str]:
        return [param.name for param in self.params]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(param.values) for param in self.params)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def point(self, indices: tuple[int, ...]) -> dict[str, Any]:
        """Parameter values at an index per parameter."""
        return {param.name: param.values[i] for param, i in zip(self.params, indices, strict=True)}

    def indices(self, params: Mapping[str, Any]) -> tuple[int, ...]:
        return tuple(param.index(params[param.name]) for param in self.params)

    def grid(self) -> Iterator[tuple[int, ...]]:
        """Every point, the first parameter varying slowest."""
        return itertools.product(*(range(n) for n in self.shape))

    def profile(self, base: ModelProfile, params: Mapping[str, Any]) -> ModelProfile:
        """The profile a trial runs with: ``base``, then ``fixed``, then ``params``."""
        return ModelProfile.model_validate({**base.model_dump(), **self.fixed, **params})

    def violations(self, base: ModelProfile, params: Mapping[str, Any], need_ctx: int) -> list[str]:
        """Why ``params`` cannot run this workload (empty: it may)."""
        try:
            profile = self.profile(base, params)
        except ValidationError as exc:
            return [f"invalid profile: {exc.errors()[0]['msg']}"]
        reasons = [CONSTRAINTS[name](profile, need_ctx) for name in self.constraints]
        if self.max_total_ctx is not None and profile.ctx * profile.parallel > self.max_total_ctx:
            reasons.append(f"ctx x parallel {profile.ctx * profile.parallel} > max_total_ctx {self.max_total_ctx}")
        return [reason for reason in reasons if reason]

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": {param.name: list(param.values) for param in self.params},
            "fixed": dict(self.fixed),
            "constraints": list(self.constraints),
            "max_total_ctx": self.max_total_ctx,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        unknown = set(data) - {"preset", "parameters", "fixed", "constraints", "max_total_ctx"}
        if unknown:
            raise SpaceError(f"unknown keys in the search space: {sorted(unknown)}")
        base = preset_dict(str(data["preset"])) if data.get("preset") else {}
        parameters = {**base.get("parameters", {}), **(data.get("parameters") or {})}
        fixed = {**base.get("fixed", {}), **(data.get("fixed") or {})}
        params = tuple(Param(name, _expand(name, spec)) for name, spec in parameters.items() if name not in fixed)
        constraints = tuple(data.get("constraints", base.get("constraints", tuple(CONSTRAINTS))))
        return cls(params, fixed, constraints, data.get("max_total_ctx"))

    @classmethod
    def load(cls, path: Path) -> SearchSpace:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SpaceError(f"{path}: {exc}".replace("\n", " ")) from exc
        if not isinstance(data, dict):
            raise SpaceError(f"{path}: the top level must be a mapping")
        return cls.from_dict(data)


def _hashable(value: Any) -> Any:
    """Lists (tensor splits, as JSON gives them back) compare as tuples."""
    return tuple(value) if isinstance(value, list) else value


def _expand(name: str, spec: Any) -> tuple[Any, ...]:
    if isinstance(spec, list):
        return tuple(_hashable(v) for v in spec)
    if isinstance(spec, dict) and set(spec) == {"range"} and isinstance(spec["range"], list):
        low, high, *step = spec["range"]
        return tuple(range(int(low), int(high) + 1, int(step[0]) if step else 1))
    raise SpaceError(f"{name}: give a list of values or {{range: [low, high, step]}}, not {spec!r}")


def _check_value(name: str, value: Any) -> None:
    data = {name: list(value) if isinstance(value, tuple) else value}
    try:
        ModelProfile.model_validate(data)
    except ValidationError as exc:
        raise SpaceError(f"{name}: {value!r} is not valid: {exc.errors()[0]['msg']}") from None


def thread_choices() -> list[int]:
    """Half the physical cores and all of them (decode is bandwidth-bound and saturates early)."""
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return sorted({max(1, physical // 2), physical})


def preset_dict(name: str) -> dict[str, Any]:
    presets: dict[str, dict[str, Any]] = {
        "slots": {"parameters": {"parallel": [1, 2, 4, 8]}},
        "cpu": {
            "parameters": {
                "parallel": [1, 2, 4, 8],
                "batch": [256, 512, 2048],
                "ubatch": [128, 256, 512],
                "threads": thread_choices(),
                "flash_attn": ["auto", "on"],
                "cache_type_k": ["f16", "q8_0"],
                "cache_type_v": ["f16", "q8_0"],
            }
        },
        "gpu": {
            "parameters": {
                "parallel": [1, 2, 4, 8, 16],
                "ubatch": [256, 512, 1024, 2048],
                "flash_attn": ["auto", "on"],
                "cache_type_k": ["f16", "q8_0"],
                "cache_type_v": ["f16", "q8_0"],
            },
            "fixed": {"gpu_layers": "all"},
        },
        "multi-gpu": {
            "parameters": {
                "parallel": [1, 2, 4, 8, 16],
                "ubatch": [256, 512, 1024, 2048],
                "flash_attn": ["auto", "on"],
                "split_mode": ["layer", "row"],
            },
            "fixed": {"gpu_layers": "all"},
        },
    }
    if name not in presets:
        raise SpaceError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
    return presets[name]


def preset(name: str) -> SearchSpace:
    return SearchSpace.from_dict({"preset": name})


def default_preset() -> str:
    """``cpu`` with a CPU build of the engine, ``gpu`` otherwise."""
    from llmhost.installer import backend_name, extra_cmake_args

    return "cpu" if backend_name(extra_cmake_args()) == "cpu" else "gpu"


def build_space(data: Mapping[str, Any] | None, preset_name: str | None, fixed: Mapping[str, Any]) -> SearchSpace:
    """A space from its YAML mapping (or the default preset), a preset that overrides the mapping's, and values
    fixed for every trial on top of the mapping's own."""
    values = dict(data or {})
    if not data or preset_name:
        values["preset"] = preset_name or values.get("preset") or default_preset()
    values["fixed"] = {**(values.get("fixed") or {}), **fixed}
    return SearchSpace.from_dict(values)

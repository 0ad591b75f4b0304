"""How a model is split across GPUs: presets that turn a choice into llama-server's ``--tensor-split``,
``--split-mode`` and ``--main-gpu``, checked against the GPUs present.

- ``equal``: the same share on each chosen GPU.
- ``total`` / ``free``: shares proportional to each chosen GPU's total or currently free memory.
- ``custom``: the user's ratios (one per chosen GPU; non-negative, not all zero).
- ``single``: the whole model on one GPU (``--split-mode none --main-gpu N``).
GPUs not chosen get a zero share, so the split always has one entry per GPU present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from llmhost.telemetry.gpu import GpuMemory
from llmhost.types import InvalidRequest

Preset = Literal["equal", "total", "free", "custom", "single"]
PRESETS: tuple[Preset, ...] = ("equal", "total", "free", "custom", "single")


@dataclass(frozen=True, slots=True)
class Split:
    tensor_split: list[float] | None
    split_mode: Literal["none", "layer", "row"]
    main_gpu: int | None

    def profile_fields(self) -> dict[str, object]:
        return {"tensor_split": self.tensor_split, "split_mode": self.split_mode, "main_gpu": self.main_gpu}


def plan(
    preset: Preset,
    gpus: Sequence[GpuMemory],
    chosen: Sequence[int] | None = None,
    ratios: Sequence[float] | None = None,
    mode: Literal["layer", "row"] = "layer",
) -> Split:
    if not gpus:
        raise InvalidRequest("no GPU detected: there is nothing to split across", param="preset")
    indexes = [gpu.index for gpu in gpus]
    chosen = list(chosen) if chosen else indexes
    unknown = sorted(set(chosen) - set(indexes))
    if unknown or len(set(chosen)) != len(chosen):
        raise InvalidRequest(f"choose distinct GPUs among {indexes}; got {list(chosen)}", param="gpus")
    if preset == "single":
        if len(chosen) != 1:
            raise InvalidRequest("single needs exactly one GPU", param="gpus")
        return Split(None, "none", chosen[0])
    shares = _shares(preset, [gpu for gpu in gpus if gpu.index in chosen], ratios)
    by_index = dict(zip(sorted(chosen, key=indexes.index), shares, strict=True))
    split = [round(by_index.get(index, 0.0), 4) for index in indexes]
    return Split(split, mode, None)


def _shares(preset: Preset, chosen: list[GpuMemory], ratios: Sequence[float] | None) -> list[float]:
    if preset == "equal":
        weights = [1.0] * len(chosen)
    elif preset in ("total", "free"):
        weights = [gpu.total_mib if preset == "total" else gpu.free_mib for gpu in chosen]
    elif preset == "custom":
        weights = _checked_ratios(ratios, len(chosen))
    else:
        raise InvalidRequest(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}", param="preset")
    total = sum(weights)
    if total <= 0:
        raise InvalidRequest("the chosen GPUs have no memory to share", param="preset")
    return [weight / total for weight in weights]


def _checked_ratios(ratios: Sequence[float] | None, count: int) -> list[float]:
    values = list(ratios or [])
    if len(values) != count:
        raise InvalidRequest(f"custom needs {count} ratios, one per chosen GPU; got {len(values)}", param="ratios")
    if any(not isinstance(v, int | float) or v < 0 for v in values) or not any(values):
        raise InvalidRequest("ratios must be non-negative numbers, not all zero", param="ratios")
    return [float(v) for v in values]

"""Split presets against hand-computed expectations, on fake GPU sets (the hardware boundary)."""

from __future__ import annotations

import pytest

from llmhost.split import plan
from llmhost.telemetry.gpu import GpuMemory
from llmhost.types import InvalidRequest

TWO_24GB = [GpuMemory(0, 24576, 20000), GpuMemory(1, 24576, 10000)]
MIXED = [GpuMemory(0, 24576, 24000), GpuMemory(1, 12288, 12000), GpuMemory(2, 8192, 8000)]


def test_equal_and_memory_proportional_shares() -> None:
    assert plan("equal", TWO_24GB).tensor_split == [0.5, 0.5]
    assert plan("total", MIXED).tensor_split == [0.5455, 0.2727, 0.1818]  # 24:12:8 GiB of 44
    assert plan("free", TWO_24GB).tensor_split == [0.6667, 0.3333]  # 20000:10000 MiB free


def test_gpus_not_chosen_get_zero() -> None:
    split = plan("total", MIXED, chosen=[0, 2])
    assert split.tensor_split == [0.75, 0.0, 0.25] and split.split_mode == "layer"


def test_custom_ratios_are_checked() -> None:
    assert plan("custom", TWO_24GB, ratios=[3, 1], mode="row").profile_fields() == {
        "tensor_split": [0.75, 0.25],
        "split_mode": "row",
        "main_gpu": None,
    }
    for ratios in ([1], [0, 0], [-1, 2]):
        with pytest.raises(InvalidRequest):
            plan("custom", TWO_24GB, ratios=ratios)


def test_single_gpu_pinning() -> None:
    assert plan("single", MIXED, chosen=[1]).profile_fields() == {
        "tensor_split": None,
        "split_mode": "none",
        "main_gpu": 1,
    }
    with pytest.raises(InvalidRequest):
        plan("single", MIXED)


def test_no_gpu_and_unknown_gpus_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match="no GPU detected"):
        plan("equal", [])
    with pytest.raises(InvalidRequest, match="choose distinct GPUs"):
        plan("equal", TWO_24GB, chosen=[0, 5])

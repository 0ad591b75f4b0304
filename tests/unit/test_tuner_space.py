"""Search spaces: YAML and presets, validation, and the known constraints."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmhost.config import ModelProfile
from llmhost.tuner.space import SearchSpace, SpaceError, preset, preset_dict

BASE = ModelProfile(ctx=4096, parallel=1)


def test_yaml_space(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        "parameters:\n  parallel: [1, 2, 4]\n  threads: {range: [1, 4]}\n  tensor_split: [[1, 1], [3, 1]]\n"
        "fixed: {ctx: 1024}\nconstraints: [ctx_fits_workload]\nmax_total_ctx: 2048\n"
    )
    space = SearchSpace.load(path)
    assert space.names == ["parallel", "threads", "tensor_split"]
    assert space.shape == (3, 4, 2) and space.size == 24
    assert space.params[1].values == (1, 2, 3, 4)
    assert space.params[2].values == ((1, 1), (3, 1))
    assert space.fixed == {"ctx": 1024} and space.constraints == ("ctx_fits_workload",)
    point = space.point((2, 0, 1))
    assert point == {"parallel": 4, "threads": 1, "tensor_split": (3, 1)}
    assert space.indices({"parallel": 4, "threads": 1, "tensor_split": [3, 1]}) == (2, 0, 1)  # JSON gives lists
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert space.profile(BASE, point).tensor_split == [3.0, 1.0]
    assert space.violations(BASE, point, 512) == ["ctx x parallel 4096 > max_total_ctx 2048"]


def test_grid_order() -> None:
    space = SearchSpace.from_dict({"parameters": {"parallel": [1, 2], "batch": [64, 256, 512]}})
    points = [space.point(p) for p in space.grid()]
    assert len(points) == 6
    assert points[:3] == [{"parallel": 1, "batch": b} for b in (64, 256, 512)]


def test_presets() -> None:
    cpu = preset("cpu")
    assert {"parallel", "batch", "ubatch", "threads", "cache_type_v", "flash_attn"} <= set(cpu.names)
    assert preset("gpu").fixed == {"gpu_layers": "all"}
    assert preset("slots").names == ["parallel"]
    merged = SearchSpace.from_dict({"preset": "cpu", "parameters": {"parallel": [8, 16]}, "fixed": {"threads": 2}})
    assert merged.params[0].values == (8, 16)
    assert "threads" not in merged.names and merged.fixed["threads"] == 2
    with pytest.raises(SpaceError):
        preset_dict("tpu")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"parameters": {}}, "no parameters"),
        ({"parameters": {"port": [1, 2]}}, "not a tunable parameter"),
        ({"parameters": {"parallel": [0, 1]}}, "parallel: 0 is not valid"),
        ({"parameters": {"flash_attn": ["maybe"]}}, "flash_attn"),
        ({"parameters": {"parallel": []}}, "no values"),
        ({"parameters": {"parallel": "1,2"}}, "give a list"),
        ({"parameters": {"parallel": [1]}, "constraints": ["fast"]}, "unknown constraint"),
        ({"parameters": {"parallel": [1]}, "bogus": 1}, "unknown keys"),
    ],
)
def test_invalid_spaces(data: dict[str, object], message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_dict(data)


def test_known_constraints() -> None:
    space = SearchSpace.from_dict(
        {"parameters": {"ctx": [256, 1024], "batch": [64, 512], "ubatch": [128], "cache_type_v": ["f16", "q8_0"]}}
    )
    ok = {"ctx": 1024, "batch": 512, "ubatch": 128, "cache_type_v": "q8_0"}
    assert space.violations(BASE, ok, 600) == []
    assert space.violations(BASE, {**ok, "ctx": 256}, 600) == ["ctx per slot 256 < workload need 600"]
    assert space.violations(BASE, {**ok, "batch": 64}, 600) == ["ubatch 128 > batch 64 (llama.cpp clamps it)"]
    no_fa = ModelProfile(flash_attn="off")
    assert space.violations(no_fa, ok, 600) == ["cache_type_v q8_0 needs flash attention"]
    assert space.violations(no_fa, {**ok, "cache_type_v": "f16"}, 600) == []


def test_batch_alone_is_not_clamped_away() -> None:
    space = SearchSpace.from_dict({"parameters": {"batch": [64, 256]}})
    assert space.violations(BASE, {"batch": 64}, 100) == []  # ubatch unset: llama.cpp lowers it to the batch


def test_fixed_and_searched_must_not_overlap() -> None:
    from llmhost.tuner.space import Param

    with pytest.raises(SpaceError, match="both searched and fixed"):
        SearchSpace((Param("parallel", (1, 2)),), {"parallel": 4})

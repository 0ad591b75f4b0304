"""The fake GPU backend (the one fake allowed, at the hardware boundary): rigs, listed GPUs, and config checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmhost.config import Settings
from llmhost.telemetry.backends import make_gpus
from llmhost.telemetry.fake_gpus import FakeGpu, FakeGpus


def test_the_four_rigs_the_advisor_is_tested_on() -> None:
    def memory(rig: str) -> list[tuple[float, bool]]:
        return [(m.total_mib, m.unified) for m in make_gpus(Settings(gpu_backend="fake", fake_gpus=rig)).memory()]

    assert memory("2x24gb") == [(24576.0, False)] * 2
    assert memory("4x8gb-x4") == [(8192.0, False)] * 4
    assert memory("unified-128gb") == [(131072.0, True)]
    assert memory("none") == []
    widths = [s.pcie_width for s in make_gpus(Settings(gpu_backend="fake", fake_gpus="4x8gb-x4")).sample()]
    assert widths == [16, 16, 16, 4]


def test_listed_gpus_and_their_samples() -> None:
    gpus = FakeGpus((FakeGpu(name="A", memory_mib=12000, free_mib=2000, power_draw_w=90),))
    (sample,) = gpus.sample()
    assert (sample.name, sample.memory_used_mib, sample.memory_free_mib, sample.power_draw_w) == ("A", 10000, 2000, 90)
    assert gpus.memory()[0].free_mib == 2000 and gpus.error is None
    assert FakeGpus(()).error is not None  # "no GPU" is a state with a reason


@pytest.mark.parametrize("fake_gpus", ["3x24gb", [{"memory_mib": 8, "free_mib": 9}], [{"memory_mib": 8, "bogus": 1}]])
def test_a_wrong_rig_is_a_config_error(fake_gpus: object) -> None:
    with pytest.raises(ValidationError):
        Settings(gpu_backend="fake", fake_gpus=fake_gpus)


def test_nvml_and_none_are_unchanged() -> None:
    assert make_gpus(Settings(gpu_backend="none")).memory() == []
    assert type(make_gpus(Settings(gpu_backend="nvml"))).__name__ == "NvmlBackend"

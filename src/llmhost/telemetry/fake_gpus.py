"""A GPU backend made from a description (``gpu_backend: fake``): the one fake the project allows, at the
hardware boundary, so that multi-GPU behaviour (splits, the advisor, the dashboard) can be exercised on a
machine without GPUs. Named rigs cover the setups users run; ``fake_gpus`` may also list devices one by one.

The figures are the description's, constant over time: nothing here pretends to be measured on this machine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmhost.telemetry.gpu import GpuMemory, GpuSample


class FakeGpu(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "NVIDIA GeForce RTX 3090"
    memory_mib: float = Field(24576.0, gt=0)
    free_mib: float | None = Field(None, ge=0, description="default: all of it less 300 MiB for the driver")
    unified: bool = False
    utilization_percent: float | None = Field(0.0, ge=0, le=100)
    temperature_c: float | None = 40.0
    power_draw_w: float | None = Field(30.0, ge=0)
    power_limit_w: float | None = Field(350.0, gt=0)
    sm_clock_mhz: float | None = 1395.0
    memory_clock_mhz: float | None = 9751.0
    pcie_gen: int | None = Field(4, ge=1)
    pcie_width: int | None = Field(16, ge=1)
    pcie_gen_max: int | None = Field(4, ge=1)
    pcie_width_max: int | None = Field(16, ge=1)

    @model_validator(mode="after")
    def _free_within_total(self) -> FakeGpu:
        if self.free_mib is not None and self.free_mib > self.memory_mib:
            raise ValueError(f"free_mib {self.free_mib:g} exceeds memory_mib {self.memory_mib:g}")
        return self

    @property
    def free(self) -> float:
        return self.memory_mib - 300.0 if self.free_mib is None else self.free_mib


RTX_3090 = FakeGpu()
RTX_3070 = FakeGpu(name="NVIDIA GeForce RTX 3070", memory_mib=8192.0, power_limit_w=220.0, power_draw_w=20.0)
GB10 = FakeGpu(
    name="NVIDIA GB10",
    memory_mib=128 * 1024.0,
    unified=True,
    power_draw_w=15.0,
    power_limit_w=None,
    memory_clock_mhz=None,
    pcie_gen=None,
    pcie_width=None,
    pcie_gen_max=None,
    pcie_width_max=None,
)

RIGS: dict[str, tuple[FakeGpu, ...]] = {
    "none": (),
    "2x24gb": (RTX_3090, RTX_3090),
    # An old multi-GPU board: the fourth card sits in a slot wired x4.
    "4x8gb-x4": (RTX_3070, RTX_3070, RTX_3070, RTX_3070.model_copy(update={"pcie_width": 4})),
    "unified-128gb": (GB10,),
}


def rig(spec: str | list[FakeGpu] | None) -> tuple[FakeGpu, ...]:
    if spec is None:
        return RIGS["2x24gb"]
    if isinstance(spec, str):
        return RIGS[spec]
    return tuple(spec)


class FakeGpus:
    """GpuBackend and GpuTelemetry over fixed descriptions."""

    error: str | None = None

    def __init__(self, gpus: tuple[FakeGpu, ...]) -> None:
        self.gpus = gpus
        if not gpus:
            self.error = "no GPU in the fake rig (gpu_backend: fake, fake_gpus: none)"

    def memory(self) -> list[GpuMemory]:
        return [GpuMemory(i, gpu.memory_mib, gpu.free, unified=gpu.unified) for i, gpu in enumerate(self.gpus)]

    def sample(self) -> list[GpuSample]:
        return [_sample(i, gpu) for i, gpu in enumerate(self.gpus)]


def _sample(index: int, gpu: FakeGpu) -> GpuSample:
    return GpuSample(
        index=index,
        name=gpu.name,
        uuid=f"GPU-fake-{index:04d}",
        pci_bus_id=None if gpu.unified else f"00000000:{index + 1:02X}:00.0",
        utilization_percent=gpu.utilization_percent,
        memory_utilization_percent=0.0,
        memory_used_mib=gpu.memory_mib - gpu.free,
        memory_total_mib=gpu.memory_mib,
        memory_free_mib=gpu.free,
        unified_memory=gpu.unified,
        temperature_c=gpu.temperature_c,
        fan_percent=None if gpu.unified else 30.0,
        power_draw_w=gpu.power_draw_w,
        power_limit_w=gpu.power_limit_w,
        sm_clock_mhz=gpu.sm_clock_mhz,
        memory_clock_mhz=gpu.memory_clock_mhz,
        pcie_gen=gpu.pcie_gen,
        pcie_width=gpu.pcie_width,
        pcie_gen_max=gpu.pcie_gen_max,
        pcie_width_max=gpu.pcie_width_max,
        pcie_tx_kib_per_s=None if gpu.unified else 0.0,
        pcie_rx_kib_per_s=None if gpu.unified else 0.0,
        processes=(),
    )

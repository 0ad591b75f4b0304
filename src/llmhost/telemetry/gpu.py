"""The GPU boundary: Protocols every backend implements (NVML, none, and the tests' fake), and what they report.

Every measured field is ``None`` when the device or driver cannot report it: unsupported is never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GpuMemory:
    index: int
    total_mib: float
    free_mib: float
    unified: bool = False  # the GPU has no memory of its own: these figures are the host's (e.g. GB10)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int  # host pid namespace
    used_mib: float | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    name: str | None
    uuid: str | None
    pci_bus_id: str | None
    utilization_percent: float | None  # time the GPU was busy over the driver's sample period
    memory_utilization_percent: float | None  # time device memory was being read or written
    memory_used_mib: float | None
    memory_total_mib: float | None
    memory_free_mib: float | None
    unified_memory: bool  # memory_* are host memory figures because the GPU has none of its own
    temperature_c: float | None
    fan_percent: float | None
    power_draw_w: float | None
    power_limit_w: float | None  # the enforced limit, not the maximum the board allows
    sm_clock_mhz: float | None
    memory_clock_mhz: float | None
    pcie_gen: int | None
    pcie_width: int | None
    pcie_gen_max: int | None
    pcie_width_max: int | None
    pcie_tx_kib_per_s: float | None
    pcie_rx_kib_per_s: float | None
    processes: tuple[GpuProcess, ...] | None  # None: the driver would not list them


class GpuBackend(Protocol):
    def memory(self) -> list[GpuMemory]:
        """Memory of every GPU; an empty list means "no GPU" (a valid state)."""
        ...


class GpuTelemetry(Protocol):
    def sample(self) -> list[GpuSample]:
        """Everything measurable about every GPU; blocks (tens of ms per GPU), so call it off the event loop."""
        ...


class Gpus(GpuBackend, GpuTelemetry, Protocol):
    """A backend for both the scheduler (memory) and telemetry (samples)."""


class NoGpu:
    error = "GPU telemetry is off (gpu_backend: none)"

    def memory(self) -> list[GpuMemory]:
        return []

    def sample(self) -> list[GpuSample]:
        return []

"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as ``pynvml``).

Every field is read on its own: a call that fails (NotSupported on a GeForce fan, NoPermission, GpuIsLost...)
leaves that field ``None`` and the rest of the sample intact. No driver, no library or no device is the valid
"no GPU" state (empty lists), never an exception. Unified-memory GPUs (GB10 / DGX Spark) answer NotSupported
for framebuffer memory; their memory figures then come from the host, flagged ``unified``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil
import pynvml
import structlog

from llmhost.telemetry.gpu import GpuMemory, GpuProcess, GpuSample

log = structlog.get_logger(__name__)

MIB = 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MemoryReading:
    used_mib: float
    total_mib: float
    free_mib: float
    unified: bool


class NvmlBackend:
    """GpuBackend and GpuTelemetry on NVML. Initialises NVML on first use; thread-safe (NVML is)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._initialised: bool | None = None  # None: not tried yet
        self.error: str | None = None  # why NVML is unavailable, for diagnostics

    def memory(self) -> list[GpuMemory]:
        result = []
        for index, handle in self._devices():
            reading = read_memory(handle)
            if reading is not None:  # a GPU whose memory cannot be read cannot be planned on
                result.append(GpuMemory(index, reading.total_mib, reading.free_mib, unified=reading.unified))
        return result

    def sample(self) -> list[GpuSample]:
        return [sample_device(index, handle) for index, handle in self._devices()]

    def close(self) -> None:
        with self._lock:
            if self._initialised:
                query(pynvml.nvmlShutdown)
            self._initialised = None

    def _devices(self) -> list[tuple[int, Any]]:
        if not self._ready():
            return []
        count = query(pynvml.nvmlDeviceGetCount) or 0
        devices = []
        for index in range(count):
            handle = query(pynvml.nvmlDeviceGetHandleByIndex, index)
            if handle is not None:
                devices.append((index, handle))
        return devices

    def _ready(self) -> bool:
        with self._lock:
            if self._initialised is None:
                try:
                    pynvml.nvmlInit()
                    self._initialised, self.error = True, None
                except (pynvml.NVMLError, OSError) as exc:
                    self._initialised, self.error = False, str(exc)
                    log.info("nvml unavailable, no GPU telemetry", error=self.error)
            return self._initialised


def query(function: Callable[..., T], *args: Any) -> T | None:
    """One NVML call; any NVML error means "this value is not available"."""
    try:
        return function(*args)
    except pynvml.NVMLError:
        return None


def sample_device(index: int, handle: Any) -> GpuSample:
    memory = read_memory(handle)
    utilization = query(pynvml.nvmlDeviceGetUtilizationRates, handle)
    pci = query(pynvml.nvmlDeviceGetPciInfo, handle)
    return GpuSample(
        index=index,
        name=text(query(pynvml.nvmlDeviceGetName, handle)),
        uuid=text(query(pynvml.nvmlDeviceGetUUID, handle)),
        pci_bus_id=text(pci.busId) if pci is not None else None,
        utilization_percent=float(utilization.gpu) if utilization is not None else None,
        memory_utilization_percent=float(utilization.memory) if utilization is not None else None,
        memory_used_mib=memory.used_mib if memory else None,
        memory_total_mib=memory.total_mib if memory else None,
        memory_free_mib=memory.free_mib if memory else None,
        unified_memory=memory.unified if memory else False,
        temperature_c=number(query(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU)),
        fan_percent=number(query(pynvml.nvmlDeviceGetFanSpeed, handle)),
        power_draw_w=milli(query(pynvml.nvmlDeviceGetPowerUsage, handle)),
        power_limit_w=milli(query(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)),
        sm_clock_mhz=number(query(pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_SM)),
        memory_clock_mhz=number(query(pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_MEM)),
        pcie_gen=query(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
        pcie_width=query(pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
        pcie_gen_max=query(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
        pcie_width_max=query(pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
        # each throughput call blocks ~20 ms: NVML measures over a window
        pcie_tx_kib_per_s=number(query(pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_TX_BYTES)),
        pcie_rx_kib_per_s=number(query(pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_RX_BYTES)),
        processes=read_processes(handle),
    )


def read_memory(handle: Any) -> MemoryReading | None:
    try:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    except pynvml.NVMLError_NotSupported:
        return host_memory()
    except pynvml.NVMLError:
        return None
    return MemoryReading(info.used / MIB, info.total / MIB, info.free / MIB, unified=False)


def host_memory() -> MemoryReading:
    """What a unified-memory GPU can use: the host's memory, with "free" meaning available."""
    host = psutil.virtual_memory()
    return MemoryReading((host.total - host.available) / MIB, host.total / MIB, host.available / MIB, unified=True)


def read_processes(handle: Any) -> tuple[GpuProcess, ...] | None:
    """Compute and graphics processes; a pid in both lists is reported once (its compute entry)."""
    lists = [
        query(pynvml.nvmlDeviceGetComputeRunningProcesses, handle),
        query(pynvml.nvmlDeviceGetGraphicsRunningProcesses, handle),
    ]
    if all(entries is None for entries in lists):
        return None
    processes: dict[int, GpuProcess] = {}
    for entries in lists:
        for entry in entries or []:
            used = entry.usedGpuMemory  # bytes; None when the driver cannot tell (e.g. WDDM)
            processes.setdefault(entry.pid, GpuProcess(entry.pid, used / MIB if used is not None else None))
    return tuple(processes.values())


def text(value: str | bytes | None) -> str | None:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def number(value: float | None) -> float | None:
    return float(value) if value is not None else None


def milli(value: float | None) -> float | None:
    """NVML reports power in milliwatts."""
    return value / 1000 if value is not None else None

"""NvmlBackend over a fake NVML: the pynvml functions are replaced one by one (the only fake allowed in the suite),
so everything from the first pynvml call up is the real code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pynvml
import pytest

from llmhost.config import Settings
from llmhost.engines.scheduler import Scheduler
from llmhost.telemetry.gpu import GpuMemory, GpuProcess
from llmhost.telemetry.nvml import NvmlBackend

MIB = 1024 * 1024


@dataclass
class FakeGpu:
    """One device as NVML would describe it; ``failing`` maps a pynvml function name to the NVML error it raises."""

    name: str = "NVIDIA GeForce RTX 3090"
    uuid: str = "GPU-8c2e8a51-0000-0000-0000-000000000000"
    bus_id: bytes = b"00000000:01:00.0"
    memory: tuple[int, int, int] = (24576 * MIB, 1024 * MIB, 23552 * MIB)  # total, used, free (bytes)
    utilization: tuple[int, int] = (37, 12)
    temperature: int = 54
    fan: int = 41
    power_mw: int = 123_456
    power_limit_mw: int = 350_000
    clocks: dict[int, int] = field(default_factory=lambda: {pynvml.NVML_CLOCK_SM: 1695, pynvml.NVML_CLOCK_MEM: 9751})
    pcie: tuple[int, int, int, int] = (3, 16, 4, 16)  # current gen, current width, max gen, max width
    throughput: dict[int, int] = field(
        default_factory=lambda: {pynvml.NVML_PCIE_UTIL_TX_BYTES: 2048, pynvml.NVML_PCIE_UTIL_RX_BYTES: 512}
    )
    compute: list[tuple[int, int | None]] = field(default_factory=lambda: [(4242, 2048 * MIB)])
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)


def processes(entries: list[tuple[int, int | None]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in entries]


READERS: dict[str, Any] = {
    "nvmlDeviceGetName": lambda gpu: gpu.name,
    "nvmlDeviceGetUUID": lambda gpu: gpu.uuid,
    "nvmlDeviceGetPciInfo": lambda gpu: SimpleNamespace(busId=gpu.bus_id),
    "nvmlDeviceGetUtilizationRates": lambda gpu: SimpleNamespace(gpu=gpu.utilization[0], memory=gpu.utilization[1]),
    "nvmlDeviceGetMemoryInfo": lambda gpu: SimpleNamespace(total=gpu.memory[0], used=gpu.memory[1], free=gpu.memory[2]),
    "nvmlDeviceGetTemperature": lambda gpu, sensor: gpu.temperature,
    "nvmlDeviceGetFanSpeed": lambda gpu: gpu.fan,
    "nvmlDeviceGetPowerUsage": lambda gpu: gpu.power_mw,
    "nvmlDeviceGetEnforcedPowerLimit": lambda gpu: gpu.power_limit_mw,
    "nvmlDeviceGetClockInfo": lambda gpu, clock: gpu.clocks[clock],
    "nvmlDeviceGetCurrPcieLinkGeneration": lambda gpu: gpu.pcie[0],
    "nvmlDeviceGetCurrPcieLinkWidth": lambda gpu: gpu.pcie[1],
    "nvmlDeviceGetMaxPcieLinkGeneration": lambda gpu: gpu.pcie[2],
    "nvmlDeviceGetMaxPcieLinkWidth": lambda gpu: gpu.pcie[3],
    "nvmlDeviceGetPcieThroughput": lambda gpu, counter: gpu.throughput[counter],
    "nvmlDeviceGetComputeRunningProcesses": lambda gpu: processes(gpu.compute),
    "nvmlDeviceGetGraphicsRunningProcesses": lambda gpu: processes(gpu.graphics),
}


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.calls: dict[str, int] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pynvml, "nvmlInit", self.init)
        monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: self.count("nvmlShutdown"))
        monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: len(self.gpus))
        monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", self.handle)
        for name in READERS:
            monkeypatch.setattr(pynvml, name, self.reader(name))

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def init(self) -> None:
        self.count("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def handle(self, index: int) -> FakeGpu:
        gpu = self.gpus[index]
        if "nvmlDeviceGetHandleByIndex" in gpu.failing:
            raise pynvml.NVMLError(gpu.failing["nvmlDeviceGetHandleByIndex"])
        return gpu

    def reader(self, name: str) -> Any:
        def read(gpu: FakeGpu, *args: Any) -> Any:
            if name in gpu.failing:
                raise pynvml.NVMLError(gpu.failing[name])
            return READERS[name](gpu, *args)

        return read


def nvml(monkeypatch: pytest.MonkeyPatch, *gpus: FakeGpu, init_error: int | None = None) -> FakeNvml:
    fake = FakeNvml(list(gpus), init_error)
    fake.install(monkeypatch)
    return fake


NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED


def test_two_gpus_every_field_in_our_units(monkeypatch: pytest.MonkeyPatch) -> None:
    second = FakeGpu(
        name="NVIDIA RTX A4000",
        uuid="GPU-1",
        bus_id=b"00000000:02:00.0",
        compute=[(4242, 512 * MIB), (5151, None)],
        graphics=[(4242, 512 * MIB), (777, 64 * MIB)],
    )
    nvml(monkeypatch, FakeGpu(), second)

    first, other = NvmlBackend().sample()

    assert first.index == 0
    assert (first.name, first.uuid, first.pci_bus_id) == (FakeGpu.name, FakeGpu.uuid, "00000000:01:00.0")
    assert (first.utilization_percent, first.memory_utilization_percent) == (37.0, 12.0)
    assert (first.memory_total_mib, first.memory_used_mib, first.memory_free_mib) == (24576, 1024, 23552)
    assert first.unified_memory is False
    assert (first.temperature_c, first.fan_percent) == (54.0, 41.0)
    assert (first.power_draw_w, first.power_limit_w) == (123.456, 350.0)
    assert (first.sm_clock_mhz, first.memory_clock_mhz) == (1695.0, 9751.0)
    assert (first.pcie_gen, first.pcie_width, first.pcie_gen_max, first.pcie_width_max) == (3, 16, 4, 16)
    assert (first.pcie_tx_kib_per_s, first.pcie_rx_kib_per_s) == (2048.0, 512.0)
    assert first.processes == (GpuProcess(4242, 2048.0),)
    assert (other.index, other.name, other.pci_bus_id) == (1, "NVIDIA RTX A4000", "00000000:02:00.0")
    # a pid in both lists is listed once; an unknown per-process figure stays None
    assert other.processes == (GpuProcess(4242, 512.0), GpuProcess(5151, None), GpuProcess(777, 64.0))


def test_each_unsupported_field_is_none_and_the_rest_is_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    unsupported = [
        "nvmlDeviceGetFanSpeed",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetPcieThroughput",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetGraphicsRunningProcesses",
        "nvmlDeviceGetUUID",
    ]
    nvml(monkeypatch, FakeGpu(failing=dict.fromkeys(unsupported, NOT_SUPPORTED)))

    (gpu,) = NvmlBackend().sample()

    assert gpu.fan_percent is None
    assert gpu.power_limit_w is None
    assert gpu.pcie_tx_kib_per_s is None and gpu.pcie_rx_kib_per_s is None
    assert gpu.processes is None  # "could not list", not "no processes"
    assert gpu.uuid is None
    assert gpu.power_draw_w == 123.456
    assert gpu.temperature_c == 54.0
    assert gpu.memory_total_mib == 24576


@pytest.mark.parametrize(
    "error", [pynvml.NVML_ERROR_NO_PERMISSION, pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND]
)
def test_any_nvml_error_on_a_field_makes_only_that_field_none(monkeypatch: pytest.MonkeyPatch, error: int) -> None:
    failing = {"nvmlDeviceGetPowerUsage": error, "nvmlDeviceGetUtilizationRates": error, "nvmlDeviceGetPciInfo": error}
    nvml(monkeypatch, FakeGpu(failing=failing))

    (gpu,) = NvmlBackend().sample()

    assert gpu.power_draw_w is None
    assert gpu.utilization_percent is None and gpu.memory_utilization_percent is None
    assert gpu.pci_bus_id is None
    assert gpu.name == FakeGpu.name and gpu.fan_percent == 41.0


def test_unified_memory_gpu_reports_host_memory_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch, FakeGpu(name="NVIDIA GB10", failing={"nvmlDeviceGetMemoryInfo": NOT_SUPPORTED}))
    backend = NvmlBackend()

    (gpu,) = backend.sample()
    (memory,) = backend.memory()

    host = psutil.virtual_memory()
    assert gpu.unified_memory is True
    assert gpu.memory_total_mib == host.total / MIB
    assert gpu.memory_used_mib is not None and gpu.memory_free_mib is not None
    assert gpu.memory_used_mib + gpu.memory_free_mib == pytest.approx(gpu.memory_total_mib)
    assert memory.unified is True and memory.index == 0
    assert memory.total_mib == host.total / MIB
    assert 0 < memory.free_mib <= memory.total_mib


def test_memory_lists_every_readable_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    lost = FakeGpu(failing={"nvmlDeviceGetMemoryInfo": pynvml.NVML_ERROR_GPU_IS_LOST})
    nvml(monkeypatch, FakeGpu(), lost, FakeGpu(memory=(8192 * MIB, 0, 8192 * MIB)))

    assert NvmlBackend().memory() == [GpuMemory(0, 24576, 23552), GpuMemory(2, 8192, 8192)]


def test_a_gpu_without_a_handle_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = FakeGpu(failing={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_GPU_IS_LOST})
    nvml(monkeypatch, broken, FakeGpu(name="second"))

    assert [(gpu.index, gpu.name) for gpu in NvmlBackend().sample()] == [(1, "second")]


@pytest.mark.parametrize(
    "error", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED, pynvml.NVML_ERROR_NO_PERMISSION]
)
def test_no_driver_is_the_no_gpu_state(monkeypatch: pytest.MonkeyPatch, error: int) -> None:
    fake = nvml(monkeypatch, FakeGpu(), init_error=error)
    backend = NvmlBackend()

    assert backend.sample() == []
    assert backend.memory() == []
    assert backend.error == str(pynvml.NVMLError(error))
    assert fake.calls["nvmlInit"] == 1  # not retried every second


def test_zero_devices_is_the_no_gpu_state(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml(monkeypatch)
    backend = NvmlBackend()

    assert backend.sample() == [] and backend.memory() == []
    assert backend.error is None


def test_close_shuts_nvml_down_once_and_a_later_call_initialises_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = nvml(monkeypatch, FakeGpu())
    backend = NvmlBackend()
    backend.sample()

    backend.close()
    backend.close()
    assert fake.calls == {"nvmlInit": 1, "nvmlShutdown": 1}
    assert len(backend.sample()) == 1
    assert fake.calls["nvmlInit"] == 2


def test_the_scheduler_plans_on_nvml_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nvml(monkeypatch, FakeGpu(), FakeGpu(memory=(8192 * MIB, 0, 8192 * MIB)))
    settings = Settings(data_dir=tmp_path)

    capacity = Scheduler(settings, None, gpus=NvmlBackend()).capacity()

    reserve = settings.scheduler.reserve_mib
    assert capacity["gpu0"] == 24576 - reserve
    assert capacity["gpu1"] == 8192 - reserve


def test_the_real_nvml_of_this_machine() -> None:
    """No fake: whatever this machine has (no driver here) is a valid answer, never an exception."""
    backend = NvmlBackend()
    try:
        samples = backend.sample()
        assert [sample.index for sample in samples] == list(range(len(samples)))
        assert len(backend.memory()) <= len(samples)
        if backend.error is not None:
            assert samples == []
    finally:
        backend.close()

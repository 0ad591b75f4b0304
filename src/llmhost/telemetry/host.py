"""Host telemetry through psutil: CPU, load, memory, swap, the data directory's disk, and engine processes.

CPU percentages are deltas since the previous call (psutil keeps them per thread and per Process object),
so the first sample of a thread or a process has ``None`` there instead of psutil's meaningless 0.0.
A ``HostProbe`` is meant for one sampling thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProcessSample:
    name: str  # what the caller calls it, e.g. the model an engine serves
    pid: int
    rss_mib: float | None
    cpu_percent: float | None  # of one core: a multi-threaded engine can exceed 100


@dataclass(frozen=True, slots=True)
class DiskUsage:
    path: str  # the directory asked about; the figures are its filesystem's
    total_mib: float
    used_mib: float
    free_mib: float


@dataclass(frozen=True, slots=True)
class HostSample:
    cpu_percent: float | None
    cpu_percent_per_core: tuple[float, ...] | None
    load_average: tuple[float, float, float] | None  # 1, 5, 15 minutes
    memory_total_mib: float
    memory_used_mib: float
    memory_available_mib: float
    swap_total_mib: float
    swap_used_mib: float
    disk: DiskUsage | None
    processes: tuple[ProcessSample, ...]


class HostProbe:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._primed_threads: set[int] = set()
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, processes: Mapping[str, int] | None = None) -> HostSample:
        """One host sample; ``processes`` maps a name to a pid to report on (gone pids are left out)."""
        cpu, per_core = self._cpu()
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        return HostSample(
            cpu_percent=cpu,
            cpu_percent_per_core=per_core,
            load_average=load_average(),
            memory_total_mib=memory.total / MIB,
            memory_used_mib=memory.used / MIB,
            memory_available_mib=memory.available / MIB,
            swap_total_mib=swap.total / MIB,
            swap_used_mib=swap.used / MIB,
            disk=disk_usage(self.data_dir),
            processes=self._sample_processes(processes or {}),
        )

    def _cpu(self) -> tuple[float | None, tuple[float, ...] | None]:
        overall = psutil.cpu_percent(interval=None)
        per_core = tuple(psutil.cpu_percent(interval=None, percpu=True))
        thread = threading.get_ident()
        if thread not in self._primed_threads:
            self._primed_threads.add(thread)
            return None, None
        return overall, per_core

    def _sample_processes(self, processes: Mapping[str, int]) -> tuple[ProcessSample, ...]:
        wanted = set(processes.values())
        for pid in set(self._processes) - wanted:
            del self._processes[pid]
        samples = []
        for name, pid in processes.items():
            sample = self._sample_process(name, pid)
            if sample is not None:
                samples.append(sample)
        return tuple(samples)

    def _sample_process(self, name: str, pid: int) -> ProcessSample | None:
        process = self._processes.get(pid)
        fresh = process is None or not process.is_running()  # is_running also catches a reused pid
        try:
            if process is None or fresh:
                process = self._processes[pid] = psutil.Process(pid)
            with process.oneshot():
                cpu = process.cpu_percent(interval=None)
                rss = process.memory_info().rss / MIB
        except psutil.NoSuchProcess:
            self._processes.pop(pid, None)
            return None
        except psutil.AccessDenied:
            return ProcessSample(name, pid, rss_mib=None, cpu_percent=None)
        return ProcessSample(name, pid, rss_mib=rss, cpu_percent=None if fresh else cpu)


def load_average() -> tuple[float, float, float] | None:
    try:
        return psutil.getloadavg()
    except (AttributeError, OSError):  # platforms without a load average
        return None


def disk_usage(path: Path) -> DiskUsage | None:
    """Usage of the filesystem that holds ``path`` (or would, once created)."""
    existing = next((candidate for candidate in (path, *path.parents) if candidate.exists()), None)
    if existing is None:
        return None
    usage = psutil.disk_usage(str(existing))
    return DiskUsage(str(path), usage.total / MIB, usage.used / MIB, usage.free / MIB)

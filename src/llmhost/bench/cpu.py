"""CPU taken by other processes while a benchmark runs.

On a small shared machine this is the main source of noise (a busy neighbour can halve a 2-thread engine's
throughput), so the tuner records it with every trial: a trial measured on a busy machine can be told apart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    busy: float  # machine-wide non-idle CPU seconds
    ours: float  # CPU seconds of the watched processes


def sample(pids: Sequence[int]) -> CpuSample:
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
    return CpuSample(time.monotonic(), busy, sum(_process_cpu(pid) for pid in pids))


def _process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def other_share(before: CpuSample, after: CpuSample) -> float:
    """The share of the machine's CPU capacity used by processes other than the watched ones (0..1)."""
    capacity = (after.wall - before.wall) * (psutil.cpu_count() or 1)
    if capacity <= 0:
        return 0.0
    other = (after.busy - before.busy) - (after.ours - before.ours)
    return min(1.0, max(0.0, other / capacity))

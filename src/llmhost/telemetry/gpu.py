"""The GPU boundary: a Protocol every backend implements (NVML, unified memory, none, and the tests' fake)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GpuMemory:
    index: int
    total_mib: float
    free_mib: float


class GpuBackend(Protocol):
    def memory(self) -> list[GpuMemory]:
        """Memory of every GPU; an empty list means "no GPU" (a valid state)."""
        ...


class NoGpu:
    def memory(self) -> list[GpuMemory]:
        return []

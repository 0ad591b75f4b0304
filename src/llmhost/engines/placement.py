"""Which engines to unload so that a model fits: a pure function of memory and the loaded engines.

Policy: idle engines go first, lowest priority first, then least recently used; busy engines come after
the idle ones (they finish their requests before they stop); pinned engines never go. If the model cannot
fit even with everything evictable gone, the plan says so and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Resident:
    name: str
    charges: dict[str, float]  # MiB per device
    priority: int = 0
    last_used: float = 0.0
    pinned: bool = False
    busy: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    fits: bool
    evict: list[str] = field(default_factory=list)
    free_after: dict[str, float] = field(default_factory=dict)  # MiB per device once the evictions are done
    best_possible: dict[str, float] = field(default_factory=dict)  # MiB per device with every evictable gone


def eviction_order(residents: list[Resident]) -> list[Resident]:
    candidates = [r for r in residents if not r.pinned]
    return sorted(candidates, key=lambda r: (r.busy, r.priority, r.last_used))


def plan(
    need: dict[str, float], capacity: dict[str, float], residents: list[Resident], max_loaded: int | None = None
) -> Plan:
    free = {device: capacity.get(device, 0.0) for device in {*capacity, *need}}
    for resident in residents:
        for device, mib in resident.charges.items():
            free[device] = free.get(device, 0.0) - mib
    best = dict(free)
    for resident in eviction_order(residents):
        for device, mib in resident.charges.items():
            best[device] = best.get(device, 0.0) + mib
    if not _fits(need, best) or (max_loaded is not None and sum(r.pinned for r in residents) >= max_loaded):
        return Plan(fits=False, free_after=free, best_possible=best)
    evict: list[str] = []
    loaded = len(residents)
    for resident in eviction_order(residents):
        over_count = max_loaded is not None and loaded + 1 > max_loaded
        if _fits(need, free) and not over_count:
            break
        if not over_count and not _helps(resident, need, free):
            continue
        evict.append(resident.name)
        loaded -= 1
        for device, mib in resident.charges.items():
            free[device] += mib
    return Plan(fits=True, evict=evict, free_after=free, best_possible=best)


def _fits(need: dict[str, float], free: dict[str, float]) -> bool:
    return all(free.get(device, 0.0) >= mib for device, mib in need.items())


def _helps(resident: Resident, need: dict[str, float], free: dict[str, float]) -> bool:
    """Evicting it frees memory on a device where the new model is short."""
    return any(resident.charges.get(d, 0.0) > 0 and free.get(d, 0.0) < mib for d, mib in need.items())

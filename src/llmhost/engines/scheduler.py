"""Many models on limited memory: load on demand, fit, keep-alive, priority eviction, bounded queues.

Each model has a ``ModelSlot``: its admission (in-flight up to the engine's slots, then a bounded queue),
its engine when loaded, and when it may be unloaded. Placement decisions are serialised by one lock and
made by the pure ``placement.plan``; memory comes from the GGUF estimate until the engine reports its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import structlog

from llmhost.config import ModelProfile, Settings
from llmhost.engines import memory, placement
from llmhost.engines.engine import Engine
from llmhost.engines.llamaserver import cpu_cores, default_threads
from llmhost.engines.process import State, reap_orphans
from llmhost.models.catalog import ModelEntry
from llmhost.telemetry.gpu import GpuBackend, GpuMemory, NoGpu
from llmhost.types import EngineUnavailable, LlmhostError, Overloaded, QueueTimeout
from llmhost.upstream import UpstreamClient

log = structlog.get_logger(__name__)

REAP_INTERVAL = 1.0
MIB = 1024 * 1024


@dataclass(eq=False)
class ModelSlot:
    entry: ModelEntry
    profile: ModelProfile
    estimate: memory.Estimate
    slots: asyncio.Semaphore
    engine: Engine | None = None
    in_flight: int = 0
    waiting: int = 0
    last_used: float = field(default_factory=time.monotonic)
    expires_at: float | None = None  # monotonic deadline once idle; None = never
    pinned: bool = False
    draining: asyncio.Event | None = None  # set while an unload waits for in-flight requests
    evictions: int = 0

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def loaded(self) -> bool:
        """An engine is assigned: loading, ready, or restarting after a crash."""
        return self.engine is not None


class Scheduler:
    def __init__(self, settings: Settings, binary: Path | None, gpus: GpuBackend | None = None) -> None:
        self.settings = settings
        self.binary = binary
        self.gpus = gpus or NoGpu()
        self.pid_dir = settings.run_dir
        self.models: dict[str, ModelSlot] = {}
        self.events: list[dict[str, object]] = []  # recent loads and evictions, newest last
        self.reserved: dict[str, dict[str, float]] = {}  # MiB per device held by engines it does not place (trials)
        self._placing = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # restarts that share the cores

    def reap_orphans(self) -> list[int]:
        return reap_orphans(self.pid_dir)

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle(), name="scheduler-reaper")

    # admission -----------------------------------------------------------------------------------------

    def slot(self, entry: ModelEntry, profile: ModelProfile) -> ModelSlot:
        slot = self.models.get(entry.name)
        changed = slot is not None and (slot.profile is not profile and slot.profile != profile)
        if slot is None or changed or slot.entry.path != entry.path:
            slot = self._new_slot(entry, profile, previous=slot)
            self.models[entry.name] = slot
        return slot

    def _new_slot(self, entry: ModelEntry, profile: ModelProfile, previous: ModelSlot | None) -> ModelSlot:
        if previous is not None and previous.engine is not None:
            asyncio.get_running_loop().create_task(self._unload(previous, reason="profile changed"))
        estimate = memory.estimate(entry.meta, entry.size, profile)
        return ModelSlot(entry, profile, estimate, asyncio.Semaphore(profile.parallel), pinned=profile.pinned)

    @asynccontextmanager
    async def session(
        self,
        entry: ModelEntry,
        profile: ModelProfile,
        keep_alive: float | None = None,
        on_load: Callable[[], None] | None = None,
    ) -> AsyncIterator[tuple[Engine, UpstreamClient]]:
        """Hold one engine slot for a request: admitted, loaded, ready; released with its keep-alive.
        ``on_load`` is called when the request has to wait for its engine to load."""
        slot = self.slot(entry, profile)
        await self._admit(slot)
        slot.in_flight += 1
        try:
            if on_load is not None and (slot.engine is None or slot.engine.state != State.READY):
                on_load()
            engine = await self._ensure_loaded(slot)
            client = await engine.ensure_ready()
            yield engine, client
        finally:
            slot.in_flight -= 1
            slot.slots.release()
            self._after_request(slot, keep_alive)

    async def _admit(self, slot: ModelSlot) -> None:
        if slot.draining is not None:
            await slot.draining.wait()
        if not slot.slots.locked():
            await slot.slots.acquire()  # a free slot is taken at once, without suspending
            return
        if slot.waiting >= self.settings.scheduler.queue_size:
            raise Overloaded(
                f"{slot.name}: all {slot.profile.parallel} slots are busy and {slot.waiting} requests are queued",
                code="queue_full",
                retry_after=self._retry_after(slot),
            )
        slot.waiting += 1
        try:
            await asyncio.wait_for(slot.slots.acquire(), self.settings.scheduler.queue_timeout)
        except TimeoutError:
            raise QueueTimeout(
                f"{slot.name}: waited {self.settings.scheduler.queue_timeout:.0f} s for a free slot",
                code="queue_timeout",
                retry_after=self._retry_after(slot),
            ) from None
        finally:
            slot.waiting -= 1

    def _retry_after(self, slot: ModelSlot) -> float:
        return float(max(1, min(30, slot.waiting // max(slot.profile.parallel, 1) + 1)))

    def _after_request(self, slot: ModelSlot, keep_alive: float | None) -> None:
        now = time.monotonic()
        slot.last_used = now
        ttl = keep_alive if keep_alive is not None else slot.profile.ttl
        if ttl is None:
            ttl = self.settings.scheduler.default_ttl
        slot.expires_at = None if ttl is None or ttl < 0 else now + ttl
        if slot.expires_at is not None and slot.expires_at <= now and slot.in_flight == 0 and not slot.pinned:
            asyncio.get_running_loop().create_task(self._unload(slot, reason="keep_alive 0"))

    # loading and placement -----------------------------------------------------------------------------

    async def _ensure_loaded(self, slot: ModelSlot) -> Engine:
        if slot.loaded and slot.engine is not None:
            return slot.engine
        async with self._placing:
            if slot.loaded and slot.engine is not None:
                return slot.engine
            await self._make_room(slot)
            slot.engine = self._new_engine(slot)
            self._record("load", slot.name)
            self._share_cores(slot)
            return slot.engine

    def _share_cores(self, newcomer: ModelSlot) -> None:
        """Engines that took a larger share of the cores than is theirs now that ``newcomer`` runs beside them
        (``threads`` unset, no ``max_loaded``) restart once idle: engines that together run more threads than there
        are cores slow down tenfold or worse (see ``default_threads``). Engines offloaded to a GPU are left alone:
        their threads matter little, and their restart costs a model load."""
        if self.settings.scheduler.max_loaded:
            return
        share = default_threads(self.sharing_cpu(newcomer))
        on_gpu = bool(self.gpus.memory())
        for other in self.models.values():
            engine = other.engine
            if other is newcomer or engine is None or other.profile.threads is not None or other.draining:
                continue
            if on_gpu and other.profile.gpu_layers != 0:
                continue
            if default_threads(engine.engines) > share:
                task = asyncio.get_running_loop().create_task(self._restart_to_share(other), name=f"share-{other.name}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _restart_to_share(self, slot: ModelSlot) -> None:
        await self._unload(slot, reason=f"restarted with fewer threads to share the CPU ({cpu_cores()} cores)")
        try:
            await self.load(slot.entry, slot.profile)
        except LlmhostError as exc:
            log.warning("engine not restarted after sharing the cores", model=slot.name, error=exc.message)

    async def _make_room(self, slot: ModelSlot) -> None:
        gpus = self.gpus.memory()
        gpu_count, unified = len(gpus), unified_devices(gpus)
        need = memory.pooled(memory.device_charges(slot.estimate.total_mib, slot.profile, gpu_count), unified)
        others = [s for s in self.models.values() if s is not slot and s.loaded]
        residents = [self._resident(s, gpu_count, unified) for s in others]
        max_loaded = self.settings.scheduler.max_loaded
        result = placement.plan(need, self._unreserved(), residents, max_loaded)
        if not result.fits:
            raise EngineUnavailable(
                self._no_fit_message(slot, need, result), code="insufficient_memory", retryable=False
            )
        for name in result.evict:
            await self._unload(self.models[name], reason=f"evicted to make room for {slot.name}")

    def _no_fit_message(self, slot: ModelSlot, need: dict[str, float], result: placement.Plan) -> str:
        parts = [
            f"{device}: needs {mib:.0f} MiB, {max(result.best_possible.get(device, 0.0), 0):.0f} MiB available"
            for device, mib in need.items()
        ]
        detail = "; ".join(parts)
        return f"{slot.name} cannot fit even after unloading every unpinned model ({detail})"

    def _resident(self, slot: ModelSlot, gpu_count: int, unified: set[str]) -> placement.Resident:
        return placement.Resident(
            name=slot.name,
            charges=memory.pooled(self.charges(slot, gpu_count), unified),
            priority=slot.profile.priority,
            last_used=slot.last_used,
            pinned=slot.pinned,
            busy=slot.in_flight > 0,
        )

    def charges(self, slot: ModelSlot, gpu_count: int | None = None) -> dict[str, float]:
        """MiB per device: what the engine reported once loaded, the GGUF estimate before."""
        count = len(self.gpus.memory()) if gpu_count is None else gpu_count
        if slot.engine is not None and slot.engine.state == State.READY:
            reported = memory.reported_charges(slot.engine.memory.by_device, count)
            if reported:
                return reported
        return memory.device_charges(slot.estimate.total_mib, slot.profile, count)

    def capacity(self) -> dict[str, float]:
        cfg = self.settings.scheduler
        host = cfg.host_memory_mib or psutil.virtual_memory().total / MIB - cfg.reserve_mib
        budget = {memory.HOST: host}
        for gpu in self.gpus.memory():
            if not gpu.unified:  # its memory is the host's, already in the budget
                budget[f"gpu{gpu.index}"] = cfg.gpu_memory_mib or gpu.total_mib - cfg.reserve_mib
        return budget

    def _unreserved(self) -> dict[str, float]:
        capacity = self.capacity()
        for charges in self.reserved.values():
            for device, mib in charges.items():
                capacity[device] = capacity.get(device, 0.0) - mib
        return capacity

    def available(self) -> dict[str, float]:
        """MiB per device (``host`` and ``gpuN``) that could still be placed without unloading anything: the
        capacity less the loaded engines and the reservations."""
        gpus = self.gpus.memory()
        gpu_count, unified = len(gpus), unified_devices(gpus)
        free = self._unreserved()
        for slot in self.models.values():
            if slot.loaded:
                for device, mib in memory.pooled(self.charges(slot, gpu_count), unified).items():
                    free[device] = free.get(device, 0.0) - mib
        return free

    def pooled(self, charges: dict[str, float]) -> dict[str, float]:
        """``charges`` on the devices the budget knows: a unified-memory GPU's share goes to the host."""
        return memory.pooled(charges, unified_devices(self.gpus.memory()))

    def reserve(self, owner: str, charges: dict[str, float]) -> None:
        """Hold memory for an engine started outside the scheduler (a tuning trial) until ``release``."""
        self.reserved[owner] = dict(charges)

    def release(self, owner: str) -> None:
        self.reserved.pop(owner, None)

    def _new_engine(self, slot: ModelSlot) -> Engine:
        if self.binary is None:
            raise EngineUnavailable(
                "no llama-server binary: run `llmhost setup`, set engine.llama_server, or pass --llama-server",
                retryable=False,
            )
        return Engine(
            slot.name,
            slot.entry.path,
            slot.profile,
            binary=self.binary,
            settings=self.settings.engine,
            pid_dir=self.pid_dir,
            engines=self.sharing_cpu(slot),
        )

    def sharing_cpu(self, slot: ModelSlot) -> int:
        """How many engines may serve at once beside ``slot``'s: ``max_loaded`` when set, else those loaded now."""
        declared = self.settings.scheduler.max_loaded
        return declared or 1 + sum(1 for other in self.models.values() if other.loaded and other is not slot)

    # unloading -----------------------------------------------------------------------------------------

    async def load(self, entry: ModelEntry, profile: ModelProfile) -> Engine:
        slot = self.slot(entry, profile)
        engine = await self._ensure_loaded(slot)
        await engine.ensure_ready()
        self._after_request(slot, None)
        return engine

    async def unload(self, name: str) -> bool:
        slot = self.models.get(name)
        if slot is None or slot.engine is None:
            return False
        await self._unload(slot, reason="requested")
        return True

    async def _unload(self, slot: ModelSlot, reason: str) -> None:
        """Stop the engine once its in-flight requests are done; new requests wait meanwhile."""
        if slot.draining is not None:  # another unload is draining it: done when that one is
            await slot.draining.wait()
            return
        if slot.engine is None:
            return
        slot.draining = asyncio.Event()
        try:
            while slot.in_flight > 0:
                await asyncio.sleep(0.05)
            engine, slot.engine = slot.engine, None
            if engine is not None:
                slot.evictions += reason.startswith("evicted")
                self._record("unload", slot.name, reason)  # recorded as it leaves the list of loaded engines
                await engine.stop()
        finally:
            slot.draining.set()
            slot.draining = None

    def set_pinned(self, name: str, pinned: bool) -> None:
        self.models[name].pinned = pinned

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            now = time.monotonic()
            for slot in list(self.models.values()):
                expired = slot.expires_at is not None and slot.expires_at <= now
                if expired and slot.engine is not None and slot.in_flight == 0 and not slot.pinned:
                    await self._unload(slot, reason="ttl expired")

    def _record(self, kind: str, model: str, reason: str | None = None) -> None:
        self.events.append({"time": time.time(), "event": kind, "model": model, "reason": reason})
        del self.events[:-200]
        log.info(f"model {kind}", model=model, reason=reason)

    async def stop_all(self) -> None:
        for task in [self._reaper, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        engines = [slot.engine for slot in self.models.values() if slot.engine is not None]
        for slot in self.models.values():
            slot.engine = None
        await asyncio.gather(*(engine.stop() for engine in engines), return_exceptions=True)

    def kill_all_now(self) -> None:
        for slot in self.models.values():
            if slot.engine is not None:
                slot.engine.kill_now()


def unified_devices(gpus: list[GpuMemory]) -> set[str]:
    return {f"gpu{gpu.index}" for gpu in gpus if gpu.unified}

"""A background thread that samples GPUs and the host at a steady rate and keeps recent history in memory.

NVML and psutil calls block (the PCIe throughput reads alone take ~20 ms per GPU and direction), so they run
here, never on the event loop; readers get the cached latest sample or the bounded history.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from llmhost.telemetry.gpu import GpuSample, GpuTelemetry
from llmhost.telemetry.host import HostProbe, HostSample

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    ts: float  # wall-clock seconds (time.time()) when the sample was taken
    gpus: tuple[GpuSample, ...]
    host: HostSample


class TelemetrySampler:
    """Samples every ``interval`` seconds on its own thread; the latest ``history`` seconds stay readable.

    ``on_sample`` runs on the sampler thread after each sample (e.g. to persist it); an exception there is
    logged and sampling goes on.
    """

    def __init__(
        self,
        gpus: GpuTelemetry,
        host: HostProbe,
        *,
        interval: float = 1.0,
        history: float = 600.0,
        on_sample: Callable[[TelemetrySample], None] | None = None,
    ) -> None:
        self.gpus = gpus
        self.host = host
        self.interval = interval
        self.on_sample = on_sample
        self._history: deque[TelemetrySample] = deque(maxlen=max(1, math.ceil(history / interval)))
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._processes: Mapping[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def set_processes(self, processes: Mapping[str, int]) -> None:
        """The processes to report on from the next sample on, name -> pid (e.g. model -> engine pid)."""
        self._processes = dict(processes)  # replaced whole, so the sampler thread never sees a half-update

    def start(self) -> None:
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmhost-telemetry", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def sample_now(self) -> TelemetrySample:
        """Take one sample on the calling thread and record it (blocking)."""
        with self._probing:  # the probes keep per-process state: one sample at a time
            sample = TelemetrySample(time.time(), tuple(self.gpus.sample()), self.host.sample(self._processes))
        with self._lock:
            self._history.append(sample)
        return sample

    def latest(self) -> TelemetrySample | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def history(self, since: float | None = None) -> list[TelemetrySample]:
        """Samples oldest first, only those taken at or after ``since`` (wall-clock seconds) when given."""
        with self._lock:
            samples = list(self._history)
        return samples if since is None else [sample for sample in samples if sample.ts >= since]

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            next_tick += self.interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # a slow sample: skip the missed ticks instead of bursting to catch up
                next_tick, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _tick(self) -> None:
        try:
            sample = self.sample_now()
            if self.on_sample is not None:
                self.on_sample(sample)
        except Exception:
            log.exception("telemetry sample failed")

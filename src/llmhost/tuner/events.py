"""Progress of a tuning job as events: callbacks for the CLI, queues for a server-sent event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from llmhost.bench.runner import BenchEvent
from llmhost.tuner.records import TrialRecord

EventKind = Literal[
    "job_started",
    "trial_started",
    "trial_progress",  # a benchmark event of the running trial (``bench``)
    "trial_finished",
    "trial_skipped",  # a suggestion ruled out before any engine started (``data["reason"]``)
    "job_finished",
    "job_interrupted",  # cancelled (the service stopped, Ctrl-C): resumable
    "job_stopped",  # stopped on request after the trial in flight
    "job_failed",
]
QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class TuneEvent:
    kind: EventKind
    job_id: str
    trial: TrialRecord | None = None
    data: dict[str, Any] = field(default_factory=dict)
    bench: BenchEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON for an event stream (the benchmark event reduced to its counters)."""
        data: dict[str, Any] = {"kind": self.kind, "job_id": self.job_id, **self.data}
        if self.trial is not None:
            data["trial"] = self.trial.to_dict()
        if self.bench is not None:
            data["bench"] = {"phase": self.bench.kind, "done": self.bench.done, "total": self.bench.total}
        return data


class EventHub:
    """Fan-out of a job's events to callbacks and to queues (one per SSE client); a full queue drops events."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[TuneEvent], None]] = []
        self._queues: list[asyncio.Queue[TuneEvent]] = []

    def listen(self, callback: Callable[[TuneEvent], None]) -> None:
        self._callbacks.append(callback)

    def subscribe(self) -> asyncio.Queue[TuneEvent]:
        queue: asyncio.Queue[TuneEvent] = asyncio.Queue(QUEUE_SIZE)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[TuneEvent]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def emit(self, event: TuneEvent) -> None:
        for callback in self._callbacks:
            callback(event)
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

"""The telemetry hub the service owns: GPU and host sampling (a thread), engine scraping (an asyncio task),
request tracking, the SQLite history (written from a writer thread) and the Prometheus registry.

The request being served is known through ``CURRENT``, a context variable the HTTP middleware sets (request id
and dialect), so the core can track a request without knowing which route it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import httpx
import structlog
from prometheus_client import CollectorRegistry

from llmhost.config import Settings
from llmhost.telemetry.gpu import GpuTelemetry
from llmhost.telemetry.host import HostProbe
from llmhost.telemetry.prometheus import EngineInfo, HttpMetrics, MetricSources, RequestMetrics, build_registry
from llmhost.telemetry.requests import ALLOWED, RequestRecord, RequestState, RequestSummary, RequestTracker
from llmhost.telemetry.sampler import TelemetrySample, TelemetrySampler
from llmhost.telemetry.scrape import EngineStatsBook, scrape_engine
from llmhost.telemetry.series import engine_points, telemetry_points
from llmhost.telemetry.store import TelemetryStore
from llmhost.types import Done, LlmhostError, StreamEvent

log = structlog.get_logger(__name__)

T = TypeVar("T")
SCRAPE_INTERVAL = 1.0
COMPACT_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    dialect: str
    key: str | None = None  # the API key's name, when keys are configured


CURRENT: ContextVar[RequestContext | None] = ContextVar("llmhost_request", default=None)


@dataclass(frozen=True, slots=True)
class EngineEndpoint:
    """What the scrape loop needs to know of a running engine."""

    model: str
    base_url: str
    pid: int | None


class Monitor:
    def __init__(self, settings: Settings, gpus: GpuTelemetry) -> None:
        self.settings = settings
        self.gpus = gpus
        self.sampler = TelemetrySampler(gpus, HostProbe(settings.data_dir), on_sample=self._sampled)
        self.tracker = RequestTracker(on_finish=self._finished)
        self.request_metrics = RequestMetrics()
        self.http_metrics = HttpMetrics()
        self.engine_stats = EngineStatsBook()
        self.store: TelemetryStore | None = None
        self.on_tokens: Callable[[str, int], None] | None = None  # (key name, tokens) of each finished request
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmhost-store")
        self._finished_batch: list[RequestSummary] = []  # written by one flush on the writer thread
        self._batch_lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self, engines: Callable[[], Iterable[EngineEndpoint]]) -> None:
        path = self.settings.data_dir / "telemetry.db"
        self.store = await asyncio.to_thread(TelemetryStore, path)
        self.sampler.start()
        self._client = httpx.AsyncClient()
        self._tasks = [
            asyncio.create_task(self._scrape_loop(engines), name="telemetry-scrape"),
            asyncio.create_task(self._compact_loop(), name="telemetry-compact"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.sampler.stop()
        if self._client is not None:
            await self._client.aclose()
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        if self.store is not None:
            self.store.close()

    # request tracking -------------------------------------------------------------------------------

    def track(self, model: str, target: str | None = None) -> RequestTrack:
        context = CURRENT.get()
        request_id = context.request_id if context is not None else None
        if request_id is not None and self.tracker.get(request_id) is not None:
            request_id = None  # a second engine call within one HTTP request is tracked on its own
        dialect = context.dialect if context is not None else "internal"
        record = self.tracker.start(dialect, model, target=target, request_id=request_id)
        charge = None
        if context is not None and context.key is not None and self.on_tokens is not None:
            charge = functools.partial(self.on_tokens, context.key)
        return RequestTrack(self.tracker, record, charge)

    def _finished(self, summary: RequestSummary) -> None:
        """Group commit: the first finished request schedules a flush; the ones that finish before the writer gets
        to it join the same transaction. Quiet service: one request per commit, no delay; busy: one commit per
        batch instead of one per request."""
        self.request_metrics.observe(summary)
        if self.store is None:
            return
        with self._batch_lock:
            self._finished_batch.append(summary)
            if len(self._finished_batch) > 1:
                return  # a flush is already scheduled and will take this one too
        self._writer.submit(self._flush_finished)

    def _flush_finished(self) -> None:
        with self._batch_lock:
            batch, self._finished_batch = self._finished_batch, []
        if batch and self.store is not None:
            self.store.add_requests(batch)

    # sampling ---------------------------------------------------------------------------------------

    def _sampled(self, sample: TelemetrySample) -> None:
        """On the sampler thread: the store is thread-safe, so the write happens right here."""
        if self.store is not None:
            self.store.add_points(sample.ts, telemetry_points(sample))

    async def _scrape_loop(self, engines: Callable[[], Iterable[EngineEndpoint]]) -> None:
        assert self._client is not None
        while True:
            running = list(engines())
            self.sampler.set_processes({e.model: e.pid for e in running if e.pid is not None})
            for gone in set(self.engine_stats.metrics_texts()) - {e.model for e in running}:
                self.engine_stats.forget(gone)
            for engine in running:
                await self._scrape(engine)
            await asyncio.sleep(SCRAPE_INTERVAL)

    async def _scrape(self, engine: EngineEndpoint) -> None:
        assert self._client is not None
        try:
            stats = await scrape_engine(self._client, engine.base_url)
        except httpx.HTTPError as exc:
            log.debug("engine scrape failed", model=engine.model, error=str(exc))
            return
        rates = self.engine_stats.update(engine.model, stats)
        if self.store is not None:
            self._writer.submit(self.store.add_points, stats.scraped_at, engine_points(engine.model, stats, rates))

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(COMPACT_INTERVAL)
            if self.store is not None:
                await asyncio.get_running_loop().run_in_executor(self._writer, self.store.compact)

    # exposition -------------------------------------------------------------------------------------

    def registry(self, engines: Callable[[], Iterable[EngineInfo]]) -> CollectorRegistry:
        sources = MetricSources(
            telemetry=self.sampler.latest,
            active_requests=self.tracker.active,
            engines=engines,
            engine_metrics=self.engine_stats.metrics_texts,
        )
        return build_registry(sources, self.request_metrics, self.http_metrics)

    async def in_store(self, call: Callable[[TelemetryStore], T]) -> T | None:
        """Run a store query on the writer thread (after the writes queued before it)."""
        if self.store is None:
            return None
        store = self.store
        return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: call(store))


class RequestTrack:
    """One request's way through the core: each call is a no-op when the state machine would not allow it,
    so a retried engine request never breaks the record."""

    def __init__(
        self, tracker: RequestTracker, record: RequestRecord, charge: Callable[[int], None] | None = None
    ) -> None:
        self.tracker = tracker
        self.record = record
        self.charge = charge  # counts the request's tokens against its API key
        self.done: Done | None = None

    @property
    def id(self) -> str:
        return self.record.id

    def loading(self) -> None:
        self._move(RequestState.LOADING)

    def prefill(self) -> None:
        self._move(RequestState.PREFILL)

    def event(self, event: StreamEvent) -> None:
        if isinstance(event, Done):
            self.done = event
        elif not self.record.finished:
            self.tracker.output(self.record.id)

    def finish(self) -> None:
        if self.record.finished:
            return
        self._move(RequestState.PREFILL)  # a request that never reached the engine's first token
        usage = self.done.usage if self.done is not None else None
        timings = self.done.timings if self.done is not None else None
        if usage is not None and self.charge is not None:
            self.charge(usage.total_tokens)
        self.tracker.finish(
            self.record.id,
            RequestState.DONE,
            status=200,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            tokens_per_second=timings.predicted_per_second if timings else None,
        )

    def fail(self, error: BaseException) -> None:
        if self.record.finished:
            return
        if isinstance(error, LlmhostError):
            self.tracker.finish(self.record.id, RequestState.ERROR, status=error.status, error=error.message)
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            self.tracker.finish(self.record.id, RequestState.CANCELLED, status=499, error="the client went away")
        else:
            message = f"{type(error).__name__}: {error}"
            self.tracker.finish(self.record.id, RequestState.ERROR, status=500, error=message)

    def _move(self, state: RequestState) -> None:
        if state in ALLOWED[self.record.state]:
            self.tracker.transition(self.record.id, state)

"""Prometheus exposition: ``llmhost_*`` families, plus every engine's own ``llamacpp:*`` series labelled by model.

Nothing is registered globally: ``build_registry`` returns a fresh ``CollectorRegistry``. Request counters and
histograms are fed one finished request at a time (``RequestMetrics.observe``); everything else is read at scrape
time from ``MetricSources``, callables that return what the service already holds (the sampler's cached sample,
the tracker's active requests, the engines, their latest ``/metrics`` texts), so a scrape never blocks on NVML.
Render with ``prometheus_client.generate_latest(registry)`` on the thread that owns those sources (the event loop).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from llmhost.engines.process import State
from llmhost.telemetry.requests import RequestRecord, RequestState, RequestSummary
from llmhost.telemetry.sampler import TelemetrySample
from llmhost.telemetry.scrape import relabel_engine_metrics
from llmhost.telemetry.series import HELP, Point, telemetry_points

disable_created_metrics()  # the *_created series only double the exposition; no dashboard uses them

PREFIX = "llmhost_"
MIB = 1024 * 1024
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    model: str
    state: str  # an engines.process.State value
    memory_mib: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # device -> kind -> MiB reported
    queue_depth: int = 0  # requests waiting for a slot
    in_flight: int = 0


def no_sample() -> TelemetrySample | None:
    return None


@dataclass(frozen=True, slots=True)
class MetricSources:
    """What a scrape reads; each defaults to "nothing to report"."""

    telemetry: Callable[[], TelemetrySample | None] = no_sample  # e.g. TelemetrySampler.latest
    active_requests: Callable[[], Iterable[RequestRecord]] = tuple  # e.g. RequestTracker.active
    engines: Callable[[], Iterable[EngineInfo]] = tuple
    engine_metrics: Callable[[], Mapping[str, str]] = dict  # model -> /metrics text, e.g. EngineStatsBook.metrics_texts


class RequestMetrics(Collector):
    """Cumulative request counts, tokens and latency histograms since the service started. Thread-safe."""

    def __init__(self) -> None:
        by_model = ["model", "dialect"]
        self.requests = Counter(
            "llmhost_requests",
            "Finished requests; status is how they ended, code the HTTP status",
            [*by_model, "status", "code"],
            registry=None,
        )
        self.prompt_tokens = Counter(
            "llmhost_prompt_tokens", "Prompt tokens the engines reported", by_model, registry=None
        )
        self.completion_tokens = Counter(
            "llmhost_completion_tokens", "Generated tokens the engines reported", by_model, registry=None
        )
        self.ttft = Histogram(
            "llmhost_request_ttft_seconds", "Time to the first token", by_model, buckets=TTFT_BUCKETS, registry=None
        )
        self.duration = Histogram(
            "llmhost_request_duration_seconds", "Request duration", by_model, buckets=DURATION_BUCKETS, registry=None
        )

    def observe(self, request: RequestSummary) -> None:
        labels = (request.model, request.dialect)
        code = str(request.status) if request.status is not None else ""
        self.requests.labels(*labels, str(request.state), code).inc()
        if request.prompt_tokens is not None:
            self.prompt_tokens.labels(*labels).inc(request.prompt_tokens)
        if request.completion_tokens is not None:
            self.completion_tokens.labels(*labels).inc(request.completion_tokens)
        if request.ttft_ms is not None:
            self.ttft.labels(*labels).observe(request.ttft_ms / 1000)
        if request.duration_ms is not None:
            self.duration.labels(*labels).observe(request.duration_ms / 1000)

    def collect(self) -> Iterator[Metric]:
        for metric in (self.requests, self.prompt_tokens, self.completion_tokens, self.ttft, self.duration):
            yield from metric.collect()


class HttpMetrics(Collector):
    """Every HTTP response by dialect, route template and status code, including those that never reached an
    engine (bad input, unknown model, overload). Thread-safe."""

    def __init__(self) -> None:
        labels = ["dialect", "route", "method", "code"]
        self.responses = Counter("llmhost_http_responses", "HTTP responses", labels, registry=None)
        self.latency = Histogram(
            "llmhost_http_response_seconds",
            "Time until the response was complete (streams: their whole length)",
            ["dialect", "route"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )

    def observe(self, dialect: str, route: str, method: str, code: int, seconds: float) -> None:
        self.responses.labels(dialect, route, method, str(code)).inc()
        self.latency.labels(dialect, route).observe(seconds)

    def collect(self) -> Iterator[Metric]:
        yield from self.responses.collect()
        yield from self.latency.collect()


class TelemetryCollector(Collector):
    """GPU, host and engine-process gauges from the latest cached sample."""

    def __init__(self, latest: Callable[[], TelemetrySample | None]) -> None:
        self.latest = latest

    def collect(self) -> Iterator[Metric]:
        sample = self.latest()
        if sample is not None:
            yield from gauge_families(telemetry_points(sample))


class EngineCollector(Collector):
    def __init__(self, engines: Callable[[], Iterable[EngineInfo]]) -> None:
        self.engines = engines

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            PREFIX + "engine_state", "1 for the engine's current state", labels=["model", "state"]
        )
        memory = GaugeMetricFamily(
            PREFIX + "engine_memory_bytes",
            "Buffers the engine reported, by device and kind",
            labels=["model", "device", "kind"],
        )
        queue = GaugeMetricFamily(PREFIX + "queue_depth", "Requests waiting for an engine slot", labels=["model"])
        in_flight = GaugeMetricFamily(PREFIX + "requests_in_flight", "Requests holding a slot", labels=["model"])
        for engine in self.engines():
            for name in dict.fromkeys([*State, engine.state]):
                state.add_metric([engine.model, name], float(name == engine.state))
            for device, kinds in engine.memory_mib.items():
                for kind, mib in kinds.items():
                    memory.add_metric([engine.model, device, kind], mib * MIB)
            queue.add_metric([engine.model], engine.queue_depth)
            in_flight.add_metric([engine.model], engine.in_flight)
        yield from (state, memory, queue, in_flight)


class ActiveRequestsCollector(Collector):
    def __init__(self, active: Callable[[], Iterable[RequestRecord]]) -> None:
        self.active = active

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            PREFIX + "requests_active", "Requests in progress, by state", labels=["model", "dialect", "state"]
        )
        counts = Tally((record.model, record.dialect, str(record.state)) for record in self.active())
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        yield family


class VllmCompatCollector(Collector):
    """The vLLM series that dashboards and autoscalers built for vLLM read, with vLLM's ``model_name`` label."""

    RUNNING = frozenset({RequestState.PREFILL, RequestState.DECODING})

    def __init__(
        self,
        active: Callable[[], Iterable[RequestRecord]],
        engines: Callable[[], Iterable[EngineInfo]],
        requests: RequestMetrics,
    ) -> None:
        self.active = active
        self.engines = engines
        self.requests = requests

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("vllm:num_requests_running", "Requests being processed", labels=["model_name"])
        waiting = GaugeMetricFamily("vllm:num_requests_waiting", "Requests waiting", labels=["model_name"])
        counts: Tally[tuple[str, bool]] = Tally((r.model, r.state in self.RUNNING) for r in self.active())
        for model in sorted({model for model, _ in counts} | {engine.model for engine in self.engines()}):
            running.add_metric([model], counts[(model, True)])
            waiting.add_metric([model], counts[(model, False)])
        yield from (running, waiting)
        prompt = CounterMetricFamily("vllm:prompt_tokens", "Prefill tokens processed", labels=["model_name"])
        generation = CounterMetricFamily("vllm:generation_tokens", "Generation tokens", labels=["model_name"])
        for family, counter in ((prompt, self.requests.prompt_tokens), (generation, self.requests.completion_tokens)):
            for model, total in _sum_by_model(counter).items():
                family.add_metric([model], total)
        yield from (prompt, generation)


def _sum_by_model(counter: Counter) -> dict[str, float]:
    totals: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                model = sample.labels["model"]
                totals[model] = totals.get(model, 0.0) + sample.value
    return totals


class EnginePassthroughCollector(Collector):
    """Every engine's ``llamacpp:*`` series, as scraped last, with a ``model`` label."""

    def __init__(self, texts: Callable[[], Mapping[str, str]]) -> None:
        self.texts = texts

    def collect(self) -> Iterator[Metric]:
        yield from relabel_engine_metrics(self.texts())


def gauge_families(points: Iterable[Point]) -> list[GaugeMetricFamily]:
    """One gauge family per series; every point of a series carries the same label names."""
    families: dict[str, GaugeMetricFamily] = {}
    for point in points:
        family = families.get(point.series)
        if family is None:
            names = [name for name, _ in point.labels]
            family = GaugeMetricFamily(PREFIX + point.series, HELP.get(point.series, point.series), labels=names)
            families[point.series] = family
        family.add_metric([value for _, value in point.labels], point.value)
    return list(families.values())


def build_registry(
    sources: MetricSources, requests: RequestMetrics, http: HttpMetrics | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry()
    collectors: list[Collector] = [
        *([http] if http is not None else []),
        requests,
        TelemetryCollector(sources.telemetry),
        EngineCollector(sources.engines),
        ActiveRequestsCollector(sources.active_requests),
        VllmCompatCollector(sources.active_requests, sources.engines, requests),
        EnginePassthroughCollector(sources.engine_metrics),
    ]
    for collector in collectors:
        registry.register(collector)
    return registry

"""llama-server's own measurements: ``/metrics`` (needs ``--metrics``) and ``/slots``, parsed into ``EngineStats``.

Every series is optional (builds differ; an engine without ``--metrics`` answers 404 or 501), so every figure is
``None`` when the engine did not report it. Speeds come from counter deltas between two scrapes, never from the
engine's running-average gauges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = structlog.get_logger(__name__)

ENGINE_PREFIX = "llamacpp:"
MODEL_LABEL = "model"


@dataclass(frozen=True, slots=True)
class SlotStats:
    id: int
    is_processing: bool
    n_ctx: int | None
    n_prompt_tokens: int | None  # tokens of the slot's current (or last) prompt
    n_prompt_tokens_processed: int | None
    n_prompt_tokens_cache: int | None
    n_decoded: int | None  # tokens generated for the slot's current (or last) task


@dataclass(frozen=True, slots=True)
class EngineStats:
    scraped_at: float  # wall-clock seconds
    prompt_tokens_total: float | None
    prompt_tokens_cached_total: float | None
    prompt_seconds_total: float | None
    tokens_predicted_total: float | None
    tokens_predicted_seconds_total: float | None
    n_decode_total: float | None
    requests_processing: float | None
    requests_deferred: float | None
    kv_cache_usage_ratio: float | None  # older builds only; newer ones leave it to /slots
    kv_cache_tokens: float | None
    slots: tuple[SlotStats, ...] | None  # None: /slots unavailable
    metrics_text: str | None  # the raw exposition, for re-export; None: /metrics unavailable

    @property
    def busy_slots(self) -> int | None:
        return None if self.slots is None else sum(slot.is_processing for slot in self.slots)

    @property
    def tokens_generated(self) -> float | None:
        """Tokens generated so far, live: the engine counts a task's tokens only when it ends, so the tokens
        of the tasks still decoding (``/slots`` ``n_decoded``) are added."""
        if self.tokens_predicted_total is None:
            return None
        running = sum(slot.n_decoded or 0 for slot in self.slots or () if slot.is_processing)
        return self.tokens_predicted_total + running


@dataclass(frozen=True, slots=True)
class EngineRates:
    interval_s: float
    prompt_tokens_per_second: float | None  # prefill speed while prefilling (Δtokens / Δprompt seconds)
    generation_tokens_per_second: float | None  # decode speed per slot while decoding (Δtokens / Δgeneration s)
    prompt_throughput: float | None  # prompt tokens per wall-clock second over the interval
    generation_throughput: float | None  # generated tokens per wall-clock second over the interval


async def scrape_engine(client: httpx.AsyncClient, base_url: str, *, timeout: float = 2.0) -> EngineStats:
    """Fetch ``/metrics`` and ``/slots`` concurrently. An endpoint answering non-200 leaves its figures None;
    an engine that cannot be reached raises ``httpx.HTTPError``."""
    base = base_url.rstrip("/")
    metrics, slots = await asyncio.gather(
        client.get(f"{base}/metrics", timeout=timeout), client.get(f"{base}/slots", timeout=timeout)
    )
    return parse_engine_stats(
        metrics.text if metrics.status_code == 200 else None, json_body(slots), scraped_at=time.time()
    )


def json_body(response: httpx.Response) -> Any:
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def parse_engine_stats(metrics_text: str | None, slots_json: Any, *, scraped_at: float) -> EngineStats:
    values = parse_metrics(metrics_text) if metrics_text is not None else {}

    def engine(name: str) -> float | None:
        return values.get(ENGINE_PREFIX + name)

    return EngineStats(
        scraped_at=scraped_at,
        prompt_tokens_total=engine("prompt_tokens_total"),
        prompt_tokens_cached_total=engine("prompt_tokens_cached_total"),
        prompt_seconds_total=engine("prompt_seconds_total"),
        tokens_predicted_total=engine("tokens_predicted_total"),
        tokens_predicted_seconds_total=engine("tokens_predicted_seconds_total"),
        n_decode_total=engine("n_decode_total"),
        requests_processing=engine("requests_processing"),
        requests_deferred=engine("requests_deferred"),
        kv_cache_usage_ratio=engine("kv_cache_usage_ratio"),
        kv_cache_tokens=engine("kv_cache_tokens"),
        slots=parse_slots(slots_json) if slots_json is not None else None,
        metrics_text=metrics_text,
    )


def parse_metrics(text: str) -> dict[str, float]:
    """Value of every unlabelled sample by sample name (counters keep their ``_total`` name)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def parse_slots(data: Any) -> tuple[SlotStats, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(parse_slot(item) for item in data if isinstance(item, dict) and isinstance(item.get("id"), int))


def parse_slot(item: dict[str, Any]) -> SlotStats:
    next_token = item.get("next_token")
    first = next_token[0] if isinstance(next_token, list) and next_token and isinstance(next_token[0], dict) else {}
    return SlotStats(
        id=item["id"],
        is_processing=bool(item.get("is_processing", False)),
        n_ctx=integer(item.get("n_ctx")),
        n_prompt_tokens=integer(item.get("n_prompt_tokens")),
        n_prompt_tokens_processed=integer(item.get("n_prompt_tokens_processed")),
        n_prompt_tokens_cache=integer(item.get("n_prompt_tokens_cache")),
        n_decoded=integer(first.get("n_decoded")),
    )


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def compute_rates(before: EngineStats, after: EngineStats) -> EngineRates | None:
    """Rates between two scrapes of one engine; None when they do not span a positive interval.

    A counter that went down (the engine restarted) or is missing gives None for the rates built on it.
    """
    interval = after.scraped_at - before.scraped_at
    if interval <= 0:
        return None
    prompt = delta(before.prompt_tokens_total, after.prompt_tokens_total)
    generated = delta(before.tokens_predicted_total, after.tokens_predicted_total)
    generated_live = delta(before.tokens_generated, after.tokens_generated)
    return EngineRates(
        interval_s=interval,
        prompt_tokens_per_second=ratio(prompt, delta(before.prompt_seconds_total, after.prompt_seconds_total)),
        generation_tokens_per_second=ratio(
            generated, delta(before.tokens_predicted_seconds_total, after.tokens_predicted_seconds_total)
        ),
        prompt_throughput=ratio(prompt, interval),
        generation_throughput=ratio(generated_live, interval),
    )


def delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or after < before:
        return None
    return after - before


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None when nothing was measured: no time spent means no speed, not a speed of 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def relabel_engine_metrics(texts: Mapping[str, str]) -> list[Metric]:
    """Every ``llamacpp:*`` family of every engine, one family per name, each sample labelled with its model.

    ``texts`` maps a model to its engine's latest ``/metrics`` text. A text that does not parse is skipped.
    The parser names every counter sample ``*_total`` (``llamacpp:n_tokens_max`` becomes ``..._max_total``).
    """
    merged: dict[str, Metric] = {}
    for model, text in texts.items():
        try:
            families = [family for family in text_string_to_metric_families(text) if is_engine_family(family)]
        except ValueError as exc:
            log.warning("engine metrics do not parse", model=model, error=str(exc))
            continue
        for family in families:
            target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                target.add_sample(sample.name, {**sample.labels, MODEL_LABEL: model}, sample.value, sample.timestamp)
    return list(merged.values())


def is_engine_family(family: Metric) -> bool:
    return family.name.startswith(ENGINE_PREFIX)


class EngineStatsBook:
    """The latest two scrapes of every engine, and the rates between them. For one thread (the event loop)."""

    def __init__(self) -> None:
        self._latest: dict[str, EngineStats] = {}
        self._rates: dict[str, EngineRates | None] = {}

    def update(self, model: str, stats: EngineStats) -> EngineRates | None:
        previous = self._latest.get(model)
        rates = compute_rates(previous, stats) if previous is not None else None
        self._latest[model], self._rates[model] = stats, rates
        return rates

    def latest(self, model: str) -> EngineStats | None:
        return self._latest.get(model)

    def rates(self, model: str) -> EngineRates | None:
        return self._rates.get(model)

    def forget(self, model: str) -> None:
        """Drop an engine that stopped, so its last figures are not shown as current."""
        self._latest.pop(model, None)
        self._rates.pop(model, None)

    def metrics_texts(self) -> dict[str, str]:
        return {model: stats.metrics_text for model, stats in self._latest.items() if stats.metrics_text is not None}

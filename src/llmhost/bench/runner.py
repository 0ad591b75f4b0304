"""Run a benchmark: warm up, then each load level in turn, each measured on its own.

Every prompt of a level is built (and its length checked with the server's tokenizer) before the level starts,
so preparation never overlaps the measurement. Warm-up requests are not measured; they also tell whether the
server honours ``ignore_eos`` (it may reject the field, or accept it and still stop early).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np

from llmhost.bench.client import Target, http_client, list_models, request_body, stream_request
from llmhost.bench.metrics import LevelMetrics, Slo, compute_level
from llmhost.bench.prompts import InputSource, Prompt, PromptBuilder
from llmhost.bench.records import RequestRecord
from llmhost.bench.workload import LengthSpec, Level, poisson_offsets

IgnoreEos = Literal["honoured", "ignored", "rejected", "off", "unchecked"]
EventKind = Literal["preparing", "warmup", "level_started", "request_done", "level_done"]


class BenchError(Exception):
    """The benchmark cannot run (e.g. every warm-up request failed)."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    target: Target
    levels: tuple[Level, ...]
    requests: int = 20  # measured requests per level
    warmup: int = 2
    lengths: LengthSpec = field(default_factory=lambda: LengthSpec.fixed(128, 64))
    slo: Slo = field(default_factory=Slo)
    ignore_eos: bool = True
    seed: int = 0
    timeout: float = 300.0  # seconds without a byte before a request counts as timed out

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a benchmark needs at least one level")
        if self.requests < 1 or self.warmup < 0:
            raise ValueError("requests must be at least 1 and warmup not negative")

    @property
    def peak_in_flight(self) -> int:
        return max(level.peak_in_flight or self.requests for level in self.levels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "levels": [level.to_dict() for level in self.levels],
            "requests": self.requests,
            "warmup": self.warmup,
            "lengths": str(self.lengths),
            "slo": {"ttft_ms": self.slo.ttft_ms, "tpot_ms": self.slo.tpot_ms, "e2e_ms": self.slo.e2e_ms},
            "ignore_eos": self.ignore_eos,
            "seed": self.seed,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        return cls(
            target=Target(**data["target"]),
            levels=tuple(Level.from_dict(level) for level in data["levels"]),
            requests=data["requests"],
            warmup=data["warmup"],
            lengths=LengthSpec.parse(data["lengths"]),
            slo=Slo(**data["slo"]),
            ignore_eos=data["ignore_eos"],
            seed=data["seed"],
            timeout=data["timeout"],
        )


@dataclass(slots=True)
class RunFlags:
    """How far the numbers can be trusted: where token counts came from, whether output lengths were fixed."""

    input_source: InputSource = "estimated"
    ignore_eos: IgnoreEos = "unchecked"
    output_estimated: bool = False  # some output counts are not from the server's usage
    tokenizer: str | None = None  # the tokenizer dialect found at the server


@dataclass(slots=True)
class BenchRun:
    id: str
    created_at: float
    config: BenchConfig
    levels: list[LevelMetrics] = field(default_factory=list)
    flags: RunFlags = field(default_factory=RunFlags)
    label: str = ""
    source: str = "cli"  # cli, tuner, api
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "label": self.label,
            "source": self.source,
            "config": self.config.to_dict(),
            "flags": {
                "input_source": self.flags.input_source,
                "ignore_eos": self.flags.ignore_eos,
                "output_estimated": self.flags.output_estimated,
                "tokenizer": self.flags.tokenizer,
            },
            "levels": [level.to_dict() for level in self.levels],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRun:
        return cls(
            id=data["id"],
            created_at=data["created_at"],
            finished_at=data.get("finished_at"),
            label=data.get("label", ""),
            source=data.get("source", "cli"),
            config=BenchConfig.from_dict(data["config"]),
            flags=RunFlags(**data["flags"]),
            levels=[LevelMetrics.from_dict(level) for level in data["levels"]],
        )


@dataclass(frozen=True, slots=True)
class BenchEvent:
    kind: EventKind
    level_index: int = -1  # -1 during warm-up
    level: Level | None = None
    total: int = 0  # requests in this phase
    done: int = 0
    record: RequestRecord | None = None
    metrics: LevelMetrics | None = None


OnEvent = Callable[[BenchEvent], None]


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


async def resolve_model(target: Target) -> Target:
    """``target`` with its model filled in from ``/v1/models`` when empty (the first model listed)."""
    if target.model:
        return target
    async with http_client(target, 1, 30.0) as client:
        models = await list_models(client, target)
    if not models:
        raise BenchError(f"{target.root}/v1/models lists no model; pass one")
    return Target(target.base_url, models[0], target.api, target.api_key)


async def run_benchmark(
    config: BenchConfig,
    on_event: OnEvent | None = None,
    *,
    label: str = "",
    source: str = "cli",
    client: httpx.AsyncClient | None = None,
) -> BenchRun:
    """Warm up, then measure each level; ``client`` (default: a new pool sized for the run) is not closed."""
    run = BenchRun(new_run_id(), time.time(), config, label=label, source=source)
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(http_client(config.target, config.peak_in_flight, config.timeout))
        await _Runner(config, client, on_event or (lambda event: None)).run(run)
    run.finished_at = time.time()
    return run


class _Runner:
    def __init__(self, config: BenchConfig, client: httpx.AsyncClient, emit: OnEvent) -> None:
        self.config = config
        self.client = client
        self.emit = emit
        self.ignore_eos = config.ignore_eos
        self.next_uid = 0
        self.builder: PromptBuilder | None = None

    async def run(self, run: BenchRun) -> None:
        self.emit(BenchEvent("preparing"))
        self.builder = await PromptBuilder.create(self.client, self.config.target)
        run.flags.input_source = self.builder.source
        run.flags.tokenizer = self.builder.tokenizer.dialect if self.builder.tokenizer else None
        run.flags.ignore_eos = await self._warm_up()
        for index, level in enumerate(self.config.levels):
            metrics = await self._level(index, level)
            run.levels.append(metrics)
            run.flags.output_estimated |= metrics.output_estimated > 0

    async def _prompts(self, lengths: Sequence[tuple[int, int]]) -> list[tuple[Prompt, int]]:
        assert self.builder is not None
        jobs = []
        for input_tokens, output_tokens in lengths:
            jobs.append((await self.builder.build(self.next_uid, input_tokens), output_tokens))
            self.next_uid += 1
        return jobs

    async def _send(self, index: int, prompt: Prompt, output_tokens: int) -> RequestRecord:
        body = request_body(self.config.target, prompt.text, output_tokens, self.ignore_eos)
        record = RequestRecord(index, prompt.tokens, output_tokens, 0.0)
        return await stream_request(self.client, self.config.target, body, record)

    # warm-up -----------------------------------------------------------------------------------------------

    async def _warm_up(self) -> IgnoreEos:
        count = self.config.warmup
        if count == 0:
            return "unchecked" if self.ignore_eos else "off"
        lengths = self.config.lengths.sample(np.random.default_rng([self.config.seed, 1 << 16]), count)
        jobs = await self._prompts(lengths)
        width = min(count, self.config.peak_in_flight)
        records = await self._closed_loop(jobs, width, lambda done, record: self._warmup_event(count, done))
        if self.ignore_eos and all(record.error_code == "http_400" for record in records):
            self.ignore_eos = False
            retry = await self._send(-1, *jobs[0])
            if retry.ok:
                return "rejected"
            records = [retry]
        if not any(record.ok for record in records):
            raise BenchError(f"every warm-up request failed: {records[0].error_code}: {records[0].error}")
        return _ignore_eos_verdict(records) if self.ignore_eos else "off"

    def _warmup_event(self, total: int, done: int) -> None:
        self.emit(BenchEvent("warmup", total=total, done=done))

    # levels -------------------------------------------------------------------------------------------------

    async def _level(self, index: int, level: Level) -> LevelMetrics:
        rng = np.random.default_rng([self.config.seed, index])
        jobs = await self._prompts(self.config.lengths.sample(rng, self.config.requests))
        total = len(jobs)
        self.emit(BenchEvent("level_started", index, level, total=total))

        def on_done(done: int, record: RequestRecord) -> None:
            self.emit(BenchEvent("request_done", index, level, total=total, done=done, record=record))

        if level.concurrency is not None:
            records = await self._closed_loop(jobs, level.concurrency, on_done)
        else:
            assert level.rate is not None
            offsets = poisson_offsets(level.rate, total, rng)
            records = await self._open_loop(jobs, offsets, level.max_concurrency, on_done)
        await self._settle_estimates(records)
        metrics = compute_level(level, records, self.config.slo)
        self.emit(BenchEvent("level_done", index, level, total=total, done=total, metrics=metrics))
        return metrics

    async def _closed_loop(
        self, jobs: list[tuple[Prompt, int]], width: int, on_done: Callable[[int, RequestRecord], None]
    ) -> list[RequestRecord]:
        pending = iter(enumerate(jobs))
        records: list[RequestRecord] = []

        async def user() -> None:
            for index, (prompt, output_tokens) in pending:  # one shared iterator: each job is taken once
                records.append(await self._send(index, prompt, output_tokens))
                on_done(len(records), records[-1])

        await asyncio.gather(*(user() for _ in range(min(width, len(jobs)))))
        return sorted(records, key=lambda record: record.index)

    async def _open_loop(
        self,
        jobs: list[tuple[Prompt, int]],
        offsets: list[float],
        cap: int | None,
        on_done: Callable[[int, RequestRecord], None],
    ) -> list[RequestRecord]:
        limit = asyncio.Semaphore(cap) if cap else None
        records: list[RequestRecord] = []
        start = time.perf_counter()

        async def arrive(index: int, prompt: Prompt, output_tokens: int) -> None:
            await asyncio.sleep(max(0.0, start + offsets[index] - time.perf_counter()))
            if limit is None:
                records.append(await self._send(index, prompt, output_tokens))
            else:
                async with limit:
                    records.append(await self._send(index, prompt, output_tokens))
            on_done(len(records), records[-1])

        await asyncio.gather(*(arrive(i, prompt, out) for i, (prompt, out) in enumerate(jobs)))
        return sorted(records, key=lambda record: record.index)

    async def _settle_estimates(self, records: list[RequestRecord]) -> None:
        """Without usage, count the output with the server's tokenizer (still flagged as estimated)."""
        tokenizer = self.builder.tokenizer if self.builder else None
        for record in records:
            if record.ok and record.completion_tokens is None and tokenizer is not None:
                with contextlib.suppress(httpx.HTTPError):  # else the content-event count stays the estimate
                    record.completion_tokens = len(await tokenizer.encode(record.text))
            record.text = ""


def _ignore_eos_verdict(records: list[RequestRecord]) -> IgnoreEos:
    stopped_early = [r for r in records if r.ok and r.finish_reason == "stop" and r.output_tokens < r.output_target]
    return "ignored" if stopped_early else "honoured"

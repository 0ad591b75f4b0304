"""Soak llmhost: a steady mix of requests in every dialect, with clients that walk away mid-stream, for minutes
(or hours on demand), while the memory of the service and of its engines is sampled.

    .venv/bin/python benchmarks/soak.py                          # 2 minutes against a service it starts itself
    .venv/bin/python benchmarks/soak.py --minutes 240            # hours
    .venv/bin/python benchmarks/soak.py --url http://127.0.0.1:11436 --model smollm2-135m-instruct:q4_1

The mix (``--mix``, comma-separated) is served round-robin by ``--concurrency`` closed-loop workers:
``openai``, ``ollama``, ``tgi`` (non-streamed), ``openai-stream``, ``ollama-stream``, ``tgi-stream`` (read to
the end) and ``disconnect`` (a streamed request in one of the three dialects, dropped after 1 to 3 chunks).

Memory: the service's RSS, asyncio tasks, connections and open files come from its ``/admin/runtime``; the
engines' RSS from psutil, for the pids ``/admin/engines`` names (so ``--url`` needs the service on this
machine for engine figures). The baseline is the median of the samples in the first window after the warm-up,
the final figure the median of the last window; growth = final - baseline. An engine's RSS grows until every
cell of its KV cache has been written once (ctx x parallel x the model's KV bytes per token: about 90 MiB for
the default model at 4 x 1024), which is why the engines' default threshold is higher; in an hours-long run,
read the per-hour figure.

Exit status: 0 passed; 1 the error rate or an RSS growth is over its threshold, or an engine outlived the
service the script started; 2 setup problem; 130 interrupted. A JSON report goes to ``--json`` (default
``benchmarks/results/soak-<UTC>.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import yaml
from _common import Child, clean_env, free_port, kill_if_running, percentile
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from llmhost.config import ConfigError, load_settings
from llmhost.installer import InstallError, default_model_path, resolve_engine
from llmhost.models.names import display_name_for_file

UNARY = ("openai", "ollama", "tgi")
STREAMED = ("openai-stream", "ollama-stream", "tgi-stream")
KINDS = (*UNARY, *STREAMED, "disconnect")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTUP_TIMEOUT = 120.0
SETTLE_TIMEOUT = 10.0
MEMORY_FIGURES = ("service_rss_mib", "engine_rss_mib", "tasks", "connections", "open_files")
DISCONNECT_TOKENS = 512  # what a walked-away request asks for: it must still be generating when its client leaves


class SetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plan:
    seconds: float
    warmup_seconds: float
    url: str | None
    model: str | None
    concurrency: int
    mix: tuple[str, ...]
    max_tokens: int
    request_timeout: float
    sample_interval: float
    max_error_rate: float
    max_rss_growth_mib: float
    max_engine_rss_growth_mib: float
    parallel: int
    ctx: int
    json_path: Path


@dataclass
class Result:
    kind: str
    status: int | None  # None: no HTTP answer (transport error)
    seconds: float
    error: str | None = None
    chunks: int = 0
    warmup: bool = False


@dataclass
class Sample:
    at: float  # seconds since the load started
    service_rss_mib: float
    tasks: int
    connections: int
    open_files: int
    threads: int
    engine_rss_mib: float | None
    engines: int


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    engine_pids: set[int] = field(default_factory=set)
    model: str = ""
    load_seconds: float = 0.0
    active_after: int | None = None
    leftover_engines: list[int] = field(default_factory=list)
    interrupted: bool = False


# --- requests -------------------------------------------------------------------------------------------------


def messages(index: int) -> list[dict[str, str]]:
    topics = ("a lighthouse", "the tides", "a mountain road", "a night train", "an old library", "the first snow")
    return [{"role": "user", "content": f"Request {index}: write three sentences about {topics[index % 6]}."}]


def openai_request(model: str, index: int, max_tokens: int, streamed: bool) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": model, "messages": messages(index), "max_tokens": max_tokens}
    if streamed:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return "/v1/chat/completions", body


def ollama_request(model: str, index: int, max_tokens: int, streamed: bool) -> tuple[str, dict[str, Any]]:
    options = {"num_predict": max_tokens}
    return "/api/chat", {"model": model, "messages": messages(index), "options": options, "stream": streamed}


def tgi_request(_model: str, index: int, max_tokens: int, streamed: bool) -> tuple[str, dict[str, Any]]:
    """TGI names no model (the service's default one) and takes a raw prompt."""
    body = {"inputs": f"Story {index}. Once upon a time", "parameters": {"max_new_tokens": max_tokens}}
    return ("/generate_stream" if streamed else "/generate"), body


def request_for(kind: str, model: str, index: int, max_tokens: int) -> tuple[str, dict[str, Any]]:
    """(path, body) of one request of ``kind`` (the ``-stream`` kinds stream)."""
    build = {"openai": openai_request, "ollama": ollama_request, "tgi": tgi_request}[kind.removesuffix("-stream")]
    return build(model, index, max_tokens, kind.endswith("-stream"))


def unary_error(kind: str, payload: Any) -> str | None:
    """Why a non-streamed 200 answer is not a proper answer, or None."""
    try:
        if kind == "openai":
            ok = isinstance(payload["choices"][0]["message"]["content"], str)
        elif kind == "ollama":
            ok = payload.get("done") is True and isinstance(payload["message"]["content"], str)
        else:
            ok = isinstance(payload["generated_text"], str)
    except (KeyError, IndexError, TypeError, AttributeError):
        ok = False
    return None if ok else f"malformed answer: {str(payload)[:160]}"


def stream_error(kind: str, items: list[Any]) -> str | None:
    """Why a stream that ended is not a complete stream, or None. ``items`` are the parsed events/lines."""
    errors = [item for item in items if isinstance(item, dict) and item.get("error")]
    if errors:
        return f"error event: {str(errors[-1]['error'])[:160]}"
    if not items:
        return "empty stream"
    last = items[-1]
    complete = {
        "openai-stream": last == "[DONE]",
        "ollama-stream": isinstance(last, dict) and last.get("done") is True,
        "tgi-stream": isinstance(last, dict) and last.get("generated_text") is not None,
    }[kind]
    return None if complete else f"stream ended without its final event: {str(last)[:160]}"


def parse_line(kind: str, line: str) -> Any:
    """An NDJSON line, or an SSE ``data:`` payload (``[DONE]`` kept as the string)."""
    if kind != "ollama-stream":
        line = line.removeprefix("data:").strip()
        if line == "[DONE]":
            return line
    return orjson.loads(line)


async def send(client: httpx.AsyncClient, plan: Plan, model: str, kind: str, index: int) -> Result:
    started = time.monotonic()
    try:
        if kind == "disconnect":
            return await walk_away(client, model, index, started)
        if kind in STREAMED:
            return await read_stream(client, plan, model, kind, index, started)
        path, body = request_for(kind, model, index, plan.max_tokens)
        response = await client.post(path, json=body)
        if response.status_code != 200:
            return refused(kind, response.status_code, response.text, started)
        return Result(kind, 200, time.monotonic() - started, unary_error(kind, response.json()), chunks=1)
    except (httpx.HTTPError, ValueError) as exc:
        return Result(kind, None, time.monotonic() - started, f"{type(exc).__name__}: {exc}"[:200])


def refused(kind: str, status: int, text: str, started: float) -> Result:
    return Result(kind, status, time.monotonic() - started, f"HTTP {status}: {text[:160]}")


async def read_stream(
    client: httpx.AsyncClient, plan: Plan, model: str, kind: str, index: int, started: float
) -> Result:
    path, body = request_for(kind, model, index, plan.max_tokens)
    async with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            return refused(kind, response.status_code, await body_text(response), started)
        items = [parse_line(kind, line) async for line in non_empty_lines(response)]
    return Result(kind, 200, time.monotonic() - started, stream_error(kind, items), chunks=len(items))


async def walk_away(client: httpx.AsyncClient, model: str, index: int, started: float) -> Result:
    """A long streamed request in one of the three dialects, dropped after 1 to 3 chunks."""
    kind = STREAMED[index % len(STREAMED)]
    wanted = 1 + (index // len(STREAMED)) % 3
    path, body = request_for(kind, model, index, DISCONNECT_TOKENS)
    chunks = 0
    async with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            return refused(
                "disconnect", response.status_code, (await response.aread()).decode("utf-8", "replace"), started
            )
        async for _line in non_empty_lines(response):
            chunks += 1
            if chunks >= wanted:
                break
    error = None if chunks >= 1 else "the stream ended before the first chunk"
    return Result("disconnect", 200, time.monotonic() - started, error, chunks=chunks)


async def body_text(response: httpx.Response) -> str:
    return (await response.aread()).decode("utf-8", "replace")


async def non_empty_lines(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.strip():
            yield line


# --- sampling -------------------------------------------------------------------------------------------------


async def engine_pids(client: httpx.AsyncClient) -> list[int]:
    response = await client.get("/admin/engines", timeout=30)
    response.raise_for_status()
    return [engine["pid"] for engine in response.json()["engines"] if engine.get("pid")]


def engines_rss_mib(pids: Sequence[int]) -> float | None:
    """The engines' summed RSS, or None when none of them can be read from here."""
    total, seen = 0.0, False
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss / (1024 * 1024)
            seen = True
    return total if seen else None


async def take_sample(client: httpx.AsyncClient, run: Run, since: float) -> Sample:
    response = await client.get("/admin/runtime", timeout=30)
    response.raise_for_status()
    runtime = response.json()
    pids = await engine_pids(client)
    run.engine_pids.update(pids)
    return Sample(
        at=time.monotonic() - since,
        service_rss_mib=runtime["rss_mib"],
        tasks=runtime["tasks"],
        connections=runtime["connections"],
        open_files=runtime["open_files"],
        threads=runtime["threads"],
        engine_rss_mib=engines_rss_mib(pids),
        engines=len(pids),
    )


async def sample_until(client: httpx.AsyncClient, plan: Plan, run: Run, since: float, done: asyncio.Event) -> None:
    while not done.is_set():
        with contextlib.suppress(httpx.HTTPError):
            run.samples.append(await take_sample(client, run, since))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), plan.sample_interval)


# --- the run --------------------------------------------------------------------------------------------------


def http_client(base_url: str, plan: Plan) -> httpx.AsyncClient:
    connections = plan.concurrency + 4
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(plan.request_timeout, connect=10.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        trust_env=False,
    )


async def pick_model(client: httpx.AsyncClient, plan: Plan) -> str:
    if plan.model:
        return plan.model
    response = await client.get("/v1/models", timeout=30)
    response.raise_for_status()
    models = [item["id"] for item in response.json()["data"]]
    if not models:
        raise SetupError("the service lists no model; pass --model")
    return str(models[0])


async def warm_up(client: httpx.AsyncClient, plan: Plan, run: Run) -> None:
    """One request of every kind in the mix, until the warm-up time is over (the first one loads the engine)."""
    deadline = time.monotonic() + plan.warmup_seconds
    for index in itertools.count():
        kind = plan.mix[index % len(plan.mix)]
        result = await send(client, plan, run.model, kind, index)
        result.warmup = True
        run.results.append(result)
        if index + 1 >= len(plan.mix) and time.monotonic() >= deadline:
            return


async def closed_loop(client: httpx.AsyncClient, plan: Plan, run: Run, deadline: float) -> None:
    """``concurrency`` workers, each sending the next request of the mix as soon as its last one ended."""
    counter = itertools.count(1000)

    async def worker() -> None:
        while time.monotonic() < deadline:
            index = next(counter)
            result = await send(client, plan, run.model, plan.mix[index % len(plan.mix)], index)
            run.results.append(result)

    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))


async def active_requests_after(client: httpx.AsyncClient) -> int | None:
    """Requests the dashboard still lists as active once the load is over (polled for a while)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    active = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            active = len((await client.get("/api/metrics/dashboard", timeout=30)).json()["active_requests"])
            if active == 0:
                return 0
        await asyncio.sleep(0.25)
    return active


async def soak(plan: Plan, base_url: str, run: Run, progress: Progress) -> None:
    async with http_client(base_url, plan) as client:
        run.model = await pick_model(client, plan)
        task = progress.add_task("warming up", total=plan.seconds)
        await warm_up(client, plan, run)
        since = time.monotonic()
        deadline = since + plan.seconds
        done = asyncio.Event()
        sampler = asyncio.create_task(sample_until(client, plan, run, since, done))
        ticker = asyncio.create_task(tick(progress, task, run, since, deadline))
        try:
            await closed_loop(client, plan, run, deadline)
        finally:
            run.load_seconds = time.monotonic() - since
            ticker.cancel()
            done.set()
            await sampler
        run.active_after = await active_requests_after(client)
        with contextlib.suppress(httpx.HTTPError):
            run.samples.append(await take_sample(client, run, since))


async def tick(progress: Progress, task: Any, run: Run, since: float, deadline: float) -> None:
    while True:
        measured = [result for result in run.results if not result.warmup]
        errors = sum(1 for result in measured if result.error)
        last = run.samples[-1] if run.samples else None
        memory = (
            f" · service {last.service_rss_mib:.1f} MiB · engines {fmt(last.engine_rss_mib, 1)} MiB" if last else ""
        )
        progress.update(
            task,
            completed=min(time.monotonic(), deadline) - since,
            description=f"{len(measured)} requests · {errors} errors{memory}",
        )
        await asyncio.sleep(0.5)


# --- the service, when the script starts one ------------------------------------------------------------------


def own_service_config(plan: Plan, workdir: Path, port: int) -> tuple[Path, str]:
    try:
        settings = load_settings()
        binary = resolve_engine(settings)
    except (ConfigError, InstallError) as exc:
        raise SetupError(f"cannot locate llama-server: {exc}") from exc
    model = default_model_path(settings)
    if binary is None or not model.is_file():
        raise SetupError("llama-server or the default model is missing: run `llmhost setup` (or `make setup`)")
    name = display_name_for_file(model)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "data"),
        "cache_dir": str(workdir / "cache"),
        "model_dirs": [str(model.parent)],
        "scan_ollama": False,
        "scan_hf_cache": False,
        "ollama_registry": f"http://127.0.0.1:{free_port()}",  # nothing here pulls; never leave the machine
        "engine": {"llama_server": str(binary)},
        "models": {name: {"parallel": plan.parallel, "ctx": plan.ctx, "threads": 1}},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, name


async def wait_healthy(base_url: str, child: Child) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(trust_env=False) as client:
        while time.monotonic() < deadline:
            if not child.alive:
                raise SetupError(f"llmhost serve exited with {child.proc.returncode}:\n{child.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base_url}/health", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise SetupError(f"llmhost serve not healthy after {STARTUP_TIMEOUT:.0f} s:\n{child.tail()}")


def stop_service(child: Child, run: Run) -> None:
    """SIGTERM the service by its pid; every engine it ran must be gone with it (survivors are killed)."""
    with contextlib.suppress(psutil.Error):
        run.engine_pids.update(proc.pid for proc in child.ps.children(recursive=True) if "llama-server" in proc.name())
    engines = [proc for pid in run.engine_pids if (proc := process_or_none(pid)) is not None]
    child.stop()
    _gone, alive = psutil.wait_procs(engines, timeout=5)
    for proc in alive:
        kill_if_running(proc)
    run.leftover_engines = [proc.pid for proc in alive]


def process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


async def run_plan(plan: Plan, run: Run, progress: Progress, console: Console) -> None:
    """Soak the service at ``--url``, or one started here (and stopped, with its engines, afterwards)."""
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)  # stop as on Ctrl-C
    if plan.url:
        await soak(plan, plan.url.rstrip("/"), run, progress)
        return
    with tempfile.TemporaryDirectory(prefix="llmhost-soak-") as tmp:
        port = free_port()
        config, name = own_service_config(plan, Path(tmp), port)
        plan = replace_model(plan, name)
        argv = [sys.executable, "-m", "llmhost", "serve", "--config", str(config), "--port", str(port)]
        child = Child(argv, Path(tmp) / "serve.log", env=clean_env("LLMHOST_"))
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url, child)
            console.print(f"service pid {child.pid} on {base_url}, model {name}", highlight=False)
            await soak(plan, base_url, run, progress)
        finally:
            stop_service(child, run)


def replace_model(plan: Plan, model: str) -> Plan:
    return Plan(**{**asdict(plan), "model": plan.model or model})


# --- the report -----------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def window_median(samples: list[Sample], attribute: str, first: bool, window: float) -> float | None:
    if not samples:
        return None
    edge = samples[0].at + window if first else samples[-1].at - window
    chosen = [s for s in samples if (s.at <= edge if first else s.at >= edge)]
    values = [getattr(s, attribute) for s in chosen if getattr(s, attribute) is not None]
    return statistics.median(values) if values else None


def growth(samples: list[Sample], attribute: str, window: float) -> dict[str, float | None]:
    start = window_median(samples, attribute, True, window)
    end = window_median(samples, attribute, False, window)
    grew = end - start if start is not None and end is not None else None
    hours = (samples[-1].at - samples[0].at) / 3600 if len(samples) > 1 else 0.0
    return {
        "baseline": start,
        "final": end,
        "growth": grew,
        "per_hour": grew / hours if grew is not None and hours else None,
    }


def latency_ms(results: list[Result]) -> dict[str, float | None]:
    seconds = [result.seconds * 1000 for result in results if result.error is None]
    return {"p50": percentile(seconds, 50), "p99": percentile(seconds, 99)}


def requests_summary(results: list[Result], timed: list[Result]) -> dict[str, Any]:
    """Counts of ``results``; latency percentiles of the successful ones among ``timed``."""
    return {
        "requests": len(results),
        "errors": sum(1 for result in results if result.error),
        "statuses": dict(Counter(str(result.status) for result in results)),
        **latency_ms(timed),
    }


def summarize(plan: Plan, run: Run) -> dict[str, Any]:
    measured = [result for result in run.results if not result.warmup]
    errors = [result for result in measured if result.error]
    window = max(3 * plan.sample_interval, min(60.0, run.load_seconds / 10))
    kinds = {kind: [result for result in measured if result.kind == kind] for kind in plan.mix}
    completed = [result for result in measured if result.kind != "disconnect"]  # a walk-away's time means nothing
    return {
        "requests": len(measured),
        "warmup_requests": len(run.results) - len(measured),
        "errors": len(errors),
        "error_rate": len(errors) / len(measured) if measured else None,
        "error_messages": dict(Counter(result.error for result in errors).most_common(10)),
        "all": requests_summary(measured, completed),
        "kinds": {kind: requests_summary(results, results) for kind, results in kinds.items()},
        **{key: growth(run.samples, key, window) for key in MEMORY_FIGURES},
        "window_s": window,
        "samples": len(run.samples),
        "load_seconds": run.load_seconds,
        "active_after": run.active_after,
        "leftover_engines": run.leftover_engines,
    }


def failures(plan: Plan, summary: dict[str, Any], run: Run) -> list[str]:
    found = []
    if not summary["requests"]:
        found.append("no request was sent")
    rate = summary["error_rate"]
    if rate is not None and rate > plan.max_error_rate:
        found.append(f"error rate {rate:.2%} > {plan.max_error_rate:.2%}")
    for key, limit in (
        ("service_rss_mib", plan.max_rss_growth_mib),
        ("engine_rss_mib", plan.max_engine_rss_growth_mib),
    ):
        grew = summary[key]["growth"]
        if grew is not None and grew > limit:
            found.append(f"{key.removesuffix('_mib').replace('_', ' ')} grew {grew:.1f} MiB > {limit:.1f} MiB")
    if summary["active_after"]:
        found.append(f"{summary['active_after']} requests still active {SETTLE_TIMEOUT:.0f} s after the load")
    if run.leftover_engines:
        found.append(f"engines outlived the service: {run.leftover_engines}")
    return found


def requests_table(summary: dict[str, Any]) -> Table:
    table = Table(title="requests", caption="latency of 'all' leaves out the disconnects")
    for column in ("kind", "requests", "errors", "statuses", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("kind", "statuses") else "right")
    for kind, row in [*summary["kinds"].items(), ("all", summary["all"])]:
        statuses = " ".join(f"{status}x{count}" for status, count in sorted(row["statuses"].items()))
        table.add_row(kind, str(row["requests"]), str(row["errors"]), statuses, fmt(row["p50"]), fmt(row["p99"]))
    return table


def memory_table(summary: dict[str, Any]) -> Table:
    title = f"the service and its engines (window {summary['window_s']:.0f} s, {summary['samples']} samples)"
    table = Table(title=title)
    for column in ("figure", "baseline", "final", "growth", "per hour"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key in MEMORY_FIGURES:
        row = summary[key]
        figures = (row["baseline"], row["final"], row["growth"], row["per_hour"])
        table.add_row(key, *(fmt(value, 1) for value in figures))
    return table


def write_json(plan: Plan, summary: dict[str, Any], run: Run, problems: list[str]) -> Path:
    plan.json_path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "plan": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(plan).items()},
        "model": run.model,
        "passed": not problems,
        "failures": problems,
        "interrupted": run.interrupted,
        "summary": summary,
        "samples": [asdict(sample) for sample in run.samples],
    }
    plan.json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return plan.json_path


# --- command line ---------------------------------------------------------------------------------------------


def parse_mix(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in KINDS]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    return kinds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--minutes", type=float, default=2.0, help="how long the load runs (default 2)")
    add("--warmup", type=float, help="seconds of warm-up before it (default: 5%% of the run, 3 to 30)")
    add("--url", help="soak this service (http://host:port) instead of starting one")
    add("--model", help="the model to use (default: the service's first)")
    add("--concurrency", type=int, default=4, help="closed-loop workers (default 4)")
    add("--mix", type=parse_mix, default=KINDS, help=f"comma-separated kinds (default {','.join(KINDS)})")
    add("--max-tokens", type=int, default=16, help="tokens per request (default 16)")
    add("--request-timeout", type=float, default=60.0, help="seconds after which a request counts as hung")
    add("--sample-interval", type=float, default=2.0, help="seconds between samples (default 2)")
    add("--max-error-rate", type=float, default=0.01, help="fail above this share of errors (default 0.01)")
    add("--max-rss-growth-mib", type=float, default=64.0, help="fail when the service grows more (default 64)")
    add("--max-engine-rss-growth-mib", type=float, default=128.0, help="the same for the engines (default 128)")
    add("--parallel", type=int, default=4, help="slots of the service it starts (default 4)")
    add("--ctx", type=int, default=1024, help="context per slot of the service it starts (default 1024)")
    add("--json", type=Path, help="the JSON report (default benchmarks/results/soak-<UTC>.json)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    seconds = args.minutes * 60
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Plan(
        seconds=seconds,
        warmup_seconds=args.warmup if args.warmup is not None else min(30.0, max(3.0, seconds / 20)),
        url=args.url,
        model=args.model,
        concurrency=args.concurrency,
        mix=args.mix,
        max_tokens=args.max_tokens,
        request_timeout=args.request_timeout,
        sample_interval=args.sample_interval,
        max_error_rate=args.max_error_rate,
        max_rss_growth_mib=args.max_rss_growth_mib,
        max_engine_rss_growth_mib=args.max_engine_rss_growth_mib,
        parallel=args.parallel,
        ctx=args.ctx,
        json_path=args.json or RESULTS_DIR / f"soak-{stamp}.json",
    )


def report(console: Console, plan: Plan, run: Run) -> list[str]:
    summary = summarize(plan, run)
    problems = failures(plan, summary, run)
    console.print(requests_table(summary))
    console.print(memory_table(summary))
    for message, count in summary["error_messages"].items():
        console.print(f"[red]{count} x {message}[/]", highlight=False)
    path = write_json(plan, summary, run, problems)
    for problem in problems:
        console.print(f"[red]FAIL: {problem}[/]", highlight=False)
    verdict = "[green]PASS[/]" if not problems else "[red]FAILED[/]"
    if run.interrupted:
        verdict = "[yellow]INTERRUPTED: the figures are partial[/]"
    console.print(verdict, f"report: {path}", highlight=False)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    plan = make_plan(parse_args(argv))
    console = Console(width=None if sys.stdout.isatty() else 160)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    run = Run()
    with Progress(*columns, console=console) as progress:
        try:
            asyncio.run(run_plan(plan, run, progress, console))
        except SetupError as exc:
            console.print(f"[red]{exc}[/]", highlight=False)
            return 2
        except (KeyboardInterrupt, asyncio.CancelledError):
            run.interrupted = True
    problems = report(console, plan, run)
    if run.interrupted:
        return 130
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

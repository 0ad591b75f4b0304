"""What llmhost adds as a gateway, measured against an instant upstream (benchmarks/instant_upstream.py) in one run.

llmhost serves the upstream as a remote provider (kind ``openai``), so every request takes the whole path:
middleware, auth, routing, request tracking, translation into the client's dialect, metrics. Targets, interleaved
in every repeat: ``direct`` (the upstream itself), ``openai`` (llmhost /v1/chat/completions) and ``ollama``
(llmhost /api/chat). TGI's routes serve only local models, so they are measured on the real engine instead
(engine_vs_direct.py --routes).

Per target: e2e and TTFT p50/p99 at concurrency 1 (32-chunk streams), requests/s at concurrency 1 and 32, CPU ms per
request of the llmhost process, and the CPU other processes used. Added latency = target - direct, per repeat;
the table shows the median over repeats.

    .venv/bin/python benchmarks/gateway_overhead.py --repeats 3 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from _common import Child, CpuMeter, StartError, distribution_ms, free_port, median, start_llmhost
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
ROUTES = ("direct", "openai", "ollama")
MESSAGES = [{"role": "user", "content": "hi"}]
# Targets of issue 12 for this machine (benchmarks/README.md).
ADDED_P50_MS, ADDED_P99_MS, RELAY_RPS_C1 = 2.0, 5.0, 120.0


@dataclass(slots=True)
class Timing:
    e2e: float
    ttft: float | None
    error: str | None = None


Send = Callable[[], Awaitable[Timing]]


async def timed_stream(client: httpx.AsyncClient, url: str, done: bytes) -> Timing:
    """One streamed chat: TTFT at the first content chunk, e2e at the end; ``done`` marks a complete stream."""
    body = orjson.dumps({"model": "instant", "messages": MESSAGES, "stream": True})
    t0 = time.perf_counter()
    first: float | None = None
    finished = False
    try:
        async with client.stream("POST", url, content=body, headers={"content-type": "application/json"}) as reply:
            if reply.status_code != 200:
                return Timing(time.perf_counter() - t0, None, f"HTTP {reply.status_code}")
            async for line in reply.aiter_lines():
                if first is None and '"content":"t' in line:
                    first = time.perf_counter()
                finished = finished or done in line.encode()
    except httpx.HTTPError as exc:
        return Timing(time.perf_counter() - t0, first, type(exc).__name__)
    return Timing(time.perf_counter() - t0, first - t0 if first else None, None if finished else "incomplete stream")


async def closed_loop(
    concurrency: int, requests: int, send: Send, tick: Callable[[], None]
) -> tuple[list[Timing], float]:
    results: list[Timing] = []
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < requests:
            issued += 1
            results.append(await send())
            tick()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - start


@contextlib.asynccontextmanager
async def services(workdir: Path, chunks: int) -> AsyncIterator[tuple[str, str, Child]]:
    up_port, gw_port = free_port(), free_port()
    upstream = Child(
        [sys.executable, str(HERE / "instant_upstream.py"), "--port", str(up_port), "--chunks", str(chunks)],
        workdir / "upstream.log",
    )
    config = {
        "host": "127.0.0.1",
        "data_dir": str(workdir / "data"),
        "cache_dir": str(workdir / "cache"),
        "providers": [
            {"name": "instant", "kind": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1", "models": ["instant"]}
        ],
    }
    gateway = start_llmhost(workdir, "llmhost", config, gw_port)
    up, gw = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    try:
        await wait_for(f"{up}/health", upstream)
        await wait_for(f"{gw}/v1/models", gateway, must_contain="instant")
        yield up, gw, gateway
    finally:
        gateway.stop()
        upstream.stop()


async def wait_for(url: str, child: Child, must_contain: str = "", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if not child.alive:
                raise StartError(f"{child.argv[1]} exited:\n{child.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                reply = await client.get(url, timeout=2)
                if reply.status_code == 200 and must_contain in reply.text:
                    return
            await asyncio.sleep(0.2)
    raise StartError(f"{url} did not answer in {timeout:.0f} s:\n{child.tail()}")


def senders(client: httpx.AsyncClient, upstream: str, gateway: str) -> dict[str, Send]:
    return {
        "direct": lambda: timed_stream(client, f"{upstream}/v1/chat/completions", b"data: [DONE]"),
        "openai": lambda: timed_stream(client, f"{gateway}/v1/chat/completions", b"data: [DONE]"),
        "ollama": lambda: timed_stream(client, f"{gateway}/api/chat", b'"done":true'),
    }


def level_result(timings: list[Timing], wall: float, cpu: dict[str, float]) -> dict[str, Any]:
    ok = [t for t in timings if t.error is None]
    errors = [t.error for t in timings if t.error is not None]
    return {
        "requests": len(timings),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rps": len(ok) / wall if wall else None,
        "e2e_ms": distribution_ms([t.e2e for t in ok]),
        "ttft_ms": distribution_ms([t.ttft for t in ok if t.ttft is not None]),
        "cpu": cpu,
    }


async def measure(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llmhost-gateway-") as tmp:
        async with services(Path(tmp), args.chunks) as (upstream, gateway, llmhost):
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                send = senders(client, upstream, gateway)
                meter = CpuMeter({"llmhost": llmhost.ps, "client": psutil.Process()})
                for route in ROUTES:  # warm-up: connections, first-request paths, provider discovery
                    await closed_loop(4, args.warmup, send[route], lambda: None)
                return await run_repeats(args, send, meter, console)


async def run_repeats(
    args: argparse.Namespace, send: dict[str, Send], meter: CpuMeter, console: Console
) -> dict[str, Any]:
    levels = ((1, args.requests), (32, args.requests_c32))
    total = args.repeats * len(ROUTES) * sum(n for _, n in levels)
    runs: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("requests", total=total)
        for repeat in range(args.repeats):
            order = ROUTES[repeat % len(ROUTES) :] + ROUTES[: repeat % len(ROUTES)]  # interleaved, rotated
            for route in order:
                for concurrency, count in levels:
                    progress.update(task, description=f"repeat {repeat + 1} {route} c={concurrency}")
                    before = meter.snapshot()
                    timings, wall = await closed_loop(concurrency, count, send[route], lambda: progress.advance(task))
                    cpu = CpuMeter.delta(before, meter.snapshot(), count)
                    runs.append(
                        {
                            "repeat": repeat,
                            "route": route,
                            "concurrency": concurrency,
                            **level_result(timings, wall, cpu),
                        }
                    )
    return {"runs": runs}


def pick(runs: list[dict[str, Any]], route: str, concurrency: int) -> dict[int, dict[str, Any]]:
    return {r["repeat"]: r for r in runs if r["route"] == route and r["concurrency"] == concurrency}


def added(runs: list[dict[str, Any]], route: str, metric: str, q: str) -> float | None:
    """Median over repeats of (route - direct) at concurrency 1."""
    mine, base = pick(runs, route, 1), pick(runs, "direct", 1)
    deltas = [mine[k][metric][q] - base[k][metric][q] for k in mine if k in base and mine[k][metric][q] is not None]
    return median(deltas)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for route in ROUTES:
        c1, c32 = pick(runs, route, 1), pick(runs, route, 32)
        rows.append(
            {
                "route": route,
                "e2e_p50_ms": median(r["e2e_ms"]["p50"] for r in c1.values()),
                "e2e_p99_ms": median(r["e2e_ms"]["p99"] for r in c1.values()),
                "added_e2e_p50_ms": added(runs, route, "e2e_ms", "p50") if route != "direct" else None,
                "added_e2e_p99_ms": added(runs, route, "e2e_ms", "p99") if route != "direct" else None,
                "added_ttft_p50_ms": added(runs, route, "ttft_ms", "p50") if route != "direct" else None,
                "added_ttft_p99_ms": added(runs, route, "ttft_ms", "p99") if route != "direct" else None,
                "rps_c1": median(r["rps"] for r in c1.values()),
                "rps_c32": median(r["rps"] for r in c32.values()),
                "llmhost_cpu_ms_per_req_c1": median(r["cpu"]["llmhost_ms_per_req"] for r in c1.values())
                if route != "direct"
                else None,
                "llmhost_cpu_ms_per_req_c32": median(r["cpu"]["llmhost_ms_per_req"] for r in c32.values())
                if route != "direct"
                else None,
                "other_cpu_pct": max((r["cpu"]["other_pct"] for r in [*c1.values(), *c32.values()]), default=None),
                "errors": sum(r["errors"] for r in [*c1.values(), *c32.values()]),
            }
        )
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    by = {row["route"]: row for row in rows}
    lines = []
    for route in ("openai", "ollama"):
        row = by[route]
        p50, p99 = row["added_e2e_p50_ms"], row["added_e2e_p99_ms"]
        lines.append(f"{route}: added e2e p50 {p50:.2f} ms (target ≤ {ADDED_P50_MS}) {mark(p50 <= ADDED_P50_MS)}")
        lines.append(f"{route}: added e2e p99 {p99:.2f} ms (target ≤ {ADDED_P99_MS}) {mark(p99 <= ADDED_P99_MS)}")
        rps = row["rps_c1"]
        lines.append(f"{route}: req/s c=1 {rps:.0f} (bare relay ≈ {RELAY_RPS_C1:.0f}) {mark(rps >= RELAY_RPS_C1)}")
    cpu_openai, cpu_ollama = by["openai"]["llmhost_cpu_ms_per_req_c1"], by["ollama"]["llmhost_cpu_ms_per_req_c1"]
    ratio = cpu_ollama / cpu_openai
    lines.append(f"ollama/openai CPU per request: {ratio:.2f}x (target ≤ 1.3) {mark(ratio <= 1.3)}")
    return lines


def mark(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="gateway vs instant upstream (32-chunk streams; medians over repeats)", title_justify="left")
    for name in (
        "route",
        "e2e p50/p99 ms",
        "added e2e p50/p99",
        "added TTFT p50/p99",
        "req/s c=1",
        "req/s c=32",
        "llmhost CPU ms/req c=1 / c=32",
        "other CPU",
        "errors",
    ):
        out.add_column(name, justify="left" if name == "route" else "right")
    for row in rows:
        out.add_row(
            row["route"],
            f"{fmt(row['e2e_p50_ms'], 2)} / {fmt(row['e2e_p99_ms'], 2)}",
            f"{fmt(row['added_e2e_p50_ms'], 2)} / {fmt(row['added_e2e_p99_ms'], 2)}",
            f"{fmt(row['added_ttft_p50_ms'], 2)} / {fmt(row['added_ttft_p99_ms'], 2)}",
            fmt(row["rps_c1"]),
            fmt(row["rps_c32"]),
            f"{fmt(row['llmhost_cpu_ms_per_req_c1'], 2)} / {fmt(row['llmhost_cpu_ms_per_req_c32'], 2)}",
            f"{fmt(row['other_cpu_pct'])} %",
            str(row["errors"]),
        )
    return out


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="requests per level at concurrency 1")
    parser.add_argument("--requests-c32", type=int, default=640, help="requests per level at concurrency 32")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=180)
    started = datetime.now(UTC)
    measured = asyncio.run(measure(args, console))
    rows = summarize(measured["runs"])
    console.print(table(rows))
    for line in verdicts(rows):
        console.print(line)
    result = {
        "benchmark": "gateway",
        "started": started.isoformat(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "cpu_count": psutil.cpu_count(),
        "summary": rows,
        **measured,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = args.json or RESULTS_DIR / f"gateway-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    console.print(f"results: {path}")
    return 0 if not any(row["errors"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

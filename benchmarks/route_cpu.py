"""llmhost's CPU per real stream, per API dialect: the default model on the real engine, streamed through the OpenAI
(/v1/chat/completions), Ollama (/api/chat) and TGI (/generate_stream) routes, interleaved.

Reported per route: llmhost's own CPU (its Python process, not the engine) per request and per output token, and the
output tokens per request. Targets (issue 12): ≤ 20 ms per 64-token stream on the OpenAI route, Ollama and TGI within
1.3x of it.

    .venv/bin/python benchmarks/route_cpu.py --requests 12 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from _common import free_port, median, process_cpu, start_llmhost, wait_healthy
from rich.console import Console
from rich.table import Table

from llmhost.config import load_settings
from llmhost.installer import default_model_path, resolve_engine
from llmhost.models.names import display_name_for_file

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTUP_S = 60.0
TOKENS = 64
PROMPT = "Write a long story about a lighthouse keeper and a storm."
STORY = "Chapter one. The storm came in from the west on the first night of winter, and the lighthouse keeper"
CPU_TARGET_MS, RATIO_TARGET = 20.0, 1.3


async def lines(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> list[bytes]:
    async with client.stream(
        "POST", url, content=orjson.dumps(body), headers={"content-type": "application/json"}
    ) as r:
        r.raise_for_status()
        return [line.encode() async for line in r.aiter_lines() if line]


async def openai_tokens(client: httpx.AsyncClient, base: str, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": TOKENS}
    body |= {"stream": True, "ignore_eos": True, "stream_options": {"include_usage": True}}
    got = await lines(client, f"{base}/v1/chat/completions", body)
    usage = [orjson.loads(line[5:])["usage"] for line in got if b'"usage":{' in line]
    return int(usage[-1]["completion_tokens"])


async def ollama_tokens(client: httpx.AsyncClient, base: str, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    body |= {"options": {"num_predict": TOKENS, "ignore_eos": True}}
    got = await lines(client, f"{base}/api/chat", body)
    return int(orjson.loads(got[-1])["eval_count"])


async def tgi_tokens(client: httpx.AsyncClient, base: str, model: str) -> int:
    # TGI has no ignore_eos and sends the raw prompt (no chat template): a story opening keeps the model going.
    body = {"inputs": STORY, "parameters": {"max_new_tokens": TOKENS, "temperature": 0.7, "seed": 1}}
    got = await lines(client, f"{base}/generate_stream", body)
    return sum(1 for line in got if line.startswith(b"data:"))


ROUTES: dict[str, Callable[[httpx.AsyncClient, str, str], Awaitable[int]]] = {
    "openai": openai_tokens,
    "ollama": ollama_tokens,
    "tgi": tgi_tokens,
}


async def measure(requests: int, repeats: int) -> list[dict[str, Any]]:
    settings = load_settings(None)
    model, binary = default_model_path(settings), resolve_engine(settings)
    name = display_name_for_file(model)
    with tempfile.TemporaryDirectory(prefix="llmhost-routes-") as tmp:
        workdir, port = Path(tmp), free_port()
        config = {
            "data_dir": str(workdir / "data"),
            "model_dirs": [str(model.parent)],
            "default_model": name,
            "engine": {"llama_server": str(binary)},
            "models": {name: {"parallel": 1, "ctx": 1024}},
        }
        child = start_llmhost(workdir, "llmhost", config, port)
        base, runs = f"http://127.0.0.1:{port}", []
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                await wait_healthy(client, base, child, STARTUP_S)
                for send in ROUTES.values():  # load the engine, warm every route
                    await send(client, base, name)
                for repeat in range(repeats):
                    for route, send in ROUTES.items():
                        runs.append(
                            {
                                "repeat": repeat,
                                "route": route,
                                **await level(client, base, name, child.ps, send, requests),
                            }
                        )
        finally:
            child.stop()
    return runs


async def level(
    client: httpx.AsyncClient, base: str, model: str, proc: psutil.Process, send: Any, n: int
) -> dict[str, Any]:
    cpu, start, tokens = process_cpu(proc), time.perf_counter(), 0
    for _ in range(n):
        tokens += await send(client, base, model)
    used = process_cpu(proc) - cpu
    return {
        "requests": n,
        "tokens": tokens,
        "wall_s": time.perf_counter() - start,
        "cpu_ms_per_req": 1000 * used / n,
        "cpu_ms_per_token": 1000 * used / max(tokens, 1),
        "tokens_per_req": tokens / n,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for route in ROUTES:
        mine = [r for r in runs if r["route"] == route]
        out[route] = {
            key: median(r[key] for r in mine) for key in ("cpu_ms_per_req", "cpu_ms_per_token", "tokens_per_req")
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    started = datetime.now(UTC)
    runs = asyncio.run(measure(args.requests, args.repeats))
    rows = summary(runs)
    base = rows["openai"]["cpu_ms_per_token"] or 0.0
    table = Table(
        "route",
        "tokens/req",
        "llmhost CPU ms/req",
        "CPU µs/token",
        "vs OpenAI (per token)",
        "target",
        title="llmhost CPU per real stream (default model, medians over repeats)",
    )
    for route, row in rows.items():
        per_req, per_token, tokens = row["cpu_ms_per_req"] or 0.0, row["cpu_ms_per_token"] or 0.0, row["tokens_per_req"]
        ratio = per_token / base if base else 0.0
        target = f"≤ {CPU_TARGET_MS:.0f} ms/64 tok" if route == "openai" else f"≤ {RATIO_TARGET}x"
        ok = per_token * TOKENS <= CPU_TARGET_MS if route == "openai" else ratio <= RATIO_TARGET
        table.add_row(
            route,
            f"{tokens:.0f}",
            f"{per_req:.1f}",
            f"{per_token * 1000:.0f}",
            f"{ratio:.2f}x",
            f"{target}: {'met' if ok else 'missed'}",
        )
    console.print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"route_cpu-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps({"benchmark": "route_cpu", "started": started.isoformat(), "summary": rows, "runs": runs}, indent=1),
        encoding="utf-8",
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

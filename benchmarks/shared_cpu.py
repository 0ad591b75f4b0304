"""Two models loaded in one llmhost, serving at the same time: does each keep its fair share of the CPU?

llmhost gives each engine its share of the physical cores (``threads`` unset): ``cores // max_loaded`` when
``scheduler.max_loaded`` is set, else ``cores // engines loaded`` at the engine's start. The run measures, with the
default model under two names and llmhost's own thread defaults:

- ``alone``: model A serving by itself (c=1, 64-token outputs);
- ``together``: A and B serving at once; each should keep at least half of ``alone`` (its fair share).

Both policies are run: ``max_loaded: 2`` (each engine 1 thread on 2 cores) and no ``max_loaded`` (A started alone
with every core, B beside it with what is left).

    .venv/bin/python benchmarks/shared_cpu.py --seconds 12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, start_llmhost, wait_healthy
from rich.console import Console
from rich.table import Table

from llmhost.config import load_settings
from llmhost.installer import default_model_path, resolve_engine

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTUP_S = 60.0
FAIR = 0.5 * 0.9  # half of the solo figure, less 10 % for run-to-run noise on this box
BODY = {"messages": [{"role": "user", "content": "Write a story about a cat."}], "max_tokens": 64, "ignore_eos": True}


async def serve_for(client: httpx.AsyncClient, url: str, model: str, seconds: float) -> float:
    tokens, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        reply = await client.post(f"{url}/v1/chat/completions", json={**BODY, "model": model}, timeout=120)
        reply.raise_for_status()
        tokens += reply.json()["usage"]["completion_tokens"]
    return tokens / (time.perf_counter() - start)


async def threads_of(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    engines = (await client.get(f"{url}/admin/engines")).json()["engines"]
    return {e["model"]: e["argv"][e["argv"].index("--threads") + 1] for e in engines if e["argv"]}


async def policy(name: str, max_loaded: int | None, seconds: float, workdir: Path) -> dict[str, Any]:
    settings = load_settings(None)
    model, binary = default_model_path(settings), resolve_engine(settings)
    profile = {"parallel": 1, "ctx": 1024}
    config: dict[str, Any] = {
        "data_dir": str(workdir / name),
        "model_dirs": [],
        "engine": {"llama_server": str(binary)},
        "models": {"a": {"path": str(model), **profile}, "b": {"path": str(model), **profile}},
        "scheduler": {"max_loaded": max_loaded},
    }
    port = free_port()
    child = start_llmhost(workdir, name, config, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            await wait_healthy(client, url, child, STARTUP_S)
            await serve_for(client, url, "a", 1)  # load A alone, warm
            alone = await serve_for(client, url, "a", seconds)
            await serve_for(client, url, "b", 1)  # load B beside A
            a, b = await asyncio.gather(serve_for(client, url, "a", seconds), serve_for(client, url, "b", seconds))
            threads = await threads_of(client, url)
    finally:
        child.stop()
    return {"policy": name, "max_loaded": max_loaded, "threads": threads, "alone": alone, "a": a, "b": b}


async def measure(seconds: float, console: Console) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="llmhost-shared-") as tmp:
        for name, max_loaded in (("max_loaded: 2", 2), ("no max_loaded", None)):
            console.print(f"measuring {name} …")
            results.append(await policy(name.replace(": ", "-").replace(" ", "-"), max_loaded, seconds, Path(tmp)))
            results[-1]["policy"] = name
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    started = datetime.now(UTC)
    results = asyncio.run(measure(args.seconds, console))
    table = Table(
        "policy",
        "threads a / b",
        "A alone tok/s",
        "A together",
        "B together",
        "A+B",
        "each ≥ fair share",
        title="two models serving at once (c=1 each, 64-token outputs)",
    )
    for r in results:
        fair = min(r["a"], r["b"]) >= FAIR * r["alone"]
        table.add_row(
            r["policy"],
            f"{r['threads'].get('a')} / {r['threads'].get('b')}",
            f"{r['alone']:.1f}",
            f"{r['a']:.1f}",
            f"{r['b']:.1f}",
            f"{r['a'] + r['b']:.1f}",
            "met" if fair else "missed",
        )
    console.print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"shared_cpu-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps({"benchmark": "shared_cpu", "started": started.isoformat(), "results": results}, indent=1),
        encoding="utf-8",
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

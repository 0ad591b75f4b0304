"""Cold start: time to the first token of a model that is not loaded yet, through llmhost, against the engine's own
cold start (a llama-server started with llmhost's argv, polled every 5 ms, then asked the same request).

Target (issue 12): llmhost's cold first token ≤ the engine's own load + first token + 100 ms. Repeats interleave
direct and llmhost; between llmhost repeats the model is unloaded through the admin API.

    .venv/bin/python benchmarks/cold_start.py --repeats 3
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
from _common import Child, free_port, median, start_llmhost, stream_chat, wait_healthy
from rich.console import Console
from rich.table import Table

from llmhost.config import ModelProfile, load_settings
from llmhost.engines.llamaserver import build_argv
from llmhost.installer import default_model_path, resolve_engine
from llmhost.models.names import display_name_for_file

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTUP_S = 60.0
TARGET_MS = 100.0
PROFILE = ModelProfile(ctx=2048, parallel=2)


def body(model: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Say hello."}]
    return {"model": model, "messages": messages, "max_tokens": 4, "stream": True, "temperature": 0}


async def direct_once(binary: Path, model: Path, workdir: Path) -> float:
    port = free_port()
    argv = build_argv(binary, model, PROFILE, port)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        engine = Child(argv, workdir / f"direct-{port}.log")
        try:
            while True:
                try:
                    if (await client.get(f"{url}/health", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.005)
            result = await stream_chat(client, f"{url}/v1/chat/completions", body("m"))
            assert result.ok and result.ttft is not None, result.error
            return (time.perf_counter() - start - result.e2e + result.ttft) * 1000
        finally:
            engine.stop()


async def llmhost_once(client: httpx.AsyncClient, url: str, model: str) -> float:
    await client.post(f"{url}/admin/models/{model}/unload")
    while any(e["state"] != "stopped" for e in (await client.get(f"{url}/admin/engines")).json()["engines"]):
        await asyncio.sleep(0.05)
    result = await stream_chat(client, f"{url}/v1/chat/completions", body(model))
    assert result.ok and result.ttft is not None, result.error
    return result.ttft * 1000


async def measure(repeats: int, console: Console) -> dict[str, list[float]]:
    settings = load_settings(None)
    binary, model = resolve_engine(settings), default_model_path(settings)
    assert binary is not None, "run `llmhost setup` first"
    name = display_name_for_file(model)
    with tempfile.TemporaryDirectory(prefix="llmhost-cold-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        config = {
            "data_dir": str(workdir / "data"),
            "cache_dir": str(workdir / "cache"),
            "model_dirs": [str(model.parent)],
            "engine": {"llama_server": str(binary)},
            "models": {name: PROFILE.model_dump(mode="json", exclude_defaults=True)},
        }
        llmhost = start_llmhost(workdir, "llmhost", config, port)
        url = f"http://127.0.0.1:{port}"
        times: dict[str, list[float]] = {"direct": [], "llmhost": []}
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                await wait_healthy(client, url, llmhost, STARTUP_S)
                await llmhost_once(client, url, name)  # first start of all: page cache, imports
                for repeat in range(repeats):
                    times["direct"].append(await direct_once(binary, model, workdir))
                    times["llmhost"].append(await llmhost_once(client, url, name))
                    last = {target: f"{values[-1]:.0f} ms" for target, values in times.items()}
                    console.print(f"repeat {repeat + 1}: direct {last['direct']}, llmhost {last['llmhost']}")
        finally:
            llmhost.stop()
        return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    started = datetime.now(UTC)
    times = asyncio.run(measure(args.repeats, console))
    direct, llmhost = median(times["direct"]), median(times["llmhost"])
    assert direct is not None and llmhost is not None
    gap = llmhost - direct
    table = Table("measure", "median ms", "all (ms)", title="cold start: first token of an unloaded model")
    table.add_row(
        "engine alone: spawn → /health → first token", f"{direct:.0f}", ", ".join(f"{v:.0f}" for v in times["direct"])
    )
    table.add_row("llmhost: request → first token", f"{llmhost:.0f}", ", ".join(f"{v:.0f}" for v in times["llmhost"]))
    table.add_row(
        "llmhost - engine alone", f"{gap:+.0f}", f"target ≤ +{TARGET_MS:.0f}: {'met' if gap <= TARGET_MS else 'missed'}"
    )
    console.print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"cold_start-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps(
            {"benchmark": "cold_start", "started": started.isoformat(), "times_ms": times, "median_gap_ms": gap},
            indent=1,
        ),
        encoding="utf-8",
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

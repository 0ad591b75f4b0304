"""Shared pieces of llmhost's benchmarks: a raw streaming client, percentiles, CPU accounting and child
processes that are always stopped by their PID.

Definitions follow ``anchors-perf.md`` §1.8: ``t0`` just before the request is written, ``t1`` the first SSE
event with non-empty content (or reasoning) delta, ``tN`` the last such event, ``tEnd`` the end of the stream;
TTFT = t1 - t0, TPOT = (tN - t1) / (out - 1), E2E = tEnd - t0, ``out`` from the server's ``usage``.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import psutil
import yaml

JSON_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


# --- statistics ----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks: the same as numpy.percentile's default method."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def distribution_ms(values_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/mean/min/max in milliseconds of values given in seconds."""
    ms = [value * 1000 for value in values_s]
    out: dict[str, float | None] = {f"p{q}": percentile(ms, q) for q in (50, 90, 99)}
    out["mean"] = statistics.fmean(ms) if ms else None
    out["min"] = min(ms) if ms else None
    out["max"] = max(ms) if ms else None
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as ``{"a.b": value}`` (bools and None left out)."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


# --- one streamed request --------------------------------------------------------------------------------------


@dataclass(slots=True)
class RequestResult:
    e2e: float
    ttft: float | None = None
    tpot: float | None = None
    completion_tokens: int | None = None  # from usage; None when the server sent none
    prompt_tokens: int | None = None
    content_chunks: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tokens(self) -> int:
        """Output tokens: usage when present, else the content-chunk count (an estimate)."""
        return self.completion_tokens if self.completion_tokens is not None else self.content_chunks


@dataclass(slots=True)
class _StreamState:
    t0: float
    first: float | None = None
    last: float | None = None
    chunks: int = 0
    usage: dict[str, Any] | None = None
    done: bool = False
    error: str | None = None

    def feed(self, data: str, now: float) -> None:
        if data == "[DONE]":
            self.done = True
            return
        chunk = orjson.loads(data)
        if chunk.get("error"):
            self.error = f"error event: {str(chunk['error'])[:200]}"
            return
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                self.first = self.first if self.first is not None else now
                self.last = now
                self.chunks += 1

    def result(self, end: float) -> RequestResult:
        error = self.error or (None if self.done else "stream ended without [DONE]")
        usage = self.usage or {}
        result = RequestResult(
            e2e=end - self.t0,
            completion_tokens=usage.get("completion_tokens"),
            prompt_tokens=usage.get("prompt_tokens"),
            content_chunks=self.chunks,
            error=error,
        )
        if self.first is not None and self.last is not None:
            result.ttft = self.first - self.t0
            if result.tokens >= 2:
                result.tpot = (self.last - self.first) / (result.tokens - 1)
        return result


async def stream_chat(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> RequestResult:
    """POST one streamed chat completion and time it; SSE parsed here (no SDK overhead)."""
    content = orjson.dumps(body)
    state = _StreamState(t0=time.perf_counter())
    try:
        async with client.stream("POST", url, content=content, headers=JSON_HEADERS) as response:
            if response.status_code != 200:
                raw = await response.aread()
                state.error = f"HTTP {response.status_code}: {raw[:200].decode('utf-8', 'replace')}"
                return state.result(time.perf_counter())
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    state.feed(line[5:].strip(), time.perf_counter())
                    if state.done or state.error:
                        break
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        state.error = f"{type(exc).__name__}: {exc}"[:300]
    return state.result(time.perf_counter())


async def closed_loop(
    concurrency: int,
    requests: int,
    send: Callable[[], Any],
    on_done: Callable[[RequestResult], None] | None = None,
) -> tuple[list[RequestResult], float]:
    """``concurrency`` workers each send the next request as soon as their last one ends; returns the
    results and the wall time from the first send to the last end."""
    results: list[RequestResult] = []
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < requests:
            issued += 1
            result: RequestResult = await send()
            results.append(result)
            if on_done is not None:
                on_done(result)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - start


# --- CPU accounting --------------------------------------------------------------------------------------------


def process_cpu(proc: psutil.Process) -> float:
    """user + system seconds of this process only (all its threads, none of its children)."""
    times = proc.cpu_times()
    return times.user + times.system


@dataclass(slots=True)
class CpuSnapshot:
    wall: float
    busy: float  # machine-wide non-idle CPU seconds (user+nice+system+irq+softirq)
    steal: float
    procs: dict[str, float] = field(default_factory=dict)


class CpuMeter:
    """CPU seconds per named process and for the rest of the machine between two snapshots."""

    def __init__(self, procs: Mapping[str, psutil.Process]) -> None:
        self.procs = dict(procs)

    def snapshot(self) -> CpuSnapshot:
        total = psutil.cpu_times()
        busy = total.user + total.nice + total.system + total.irq + total.softirq
        procs = {role: process_cpu(proc) for role, proc in self.procs.items()}
        return CpuSnapshot(time.perf_counter(), busy, getattr(total, "steal", 0.0), procs)

    @staticmethod
    def delta(before: CpuSnapshot, after: CpuSnapshot, requests: int) -> dict[str, float]:
        wall = after.wall - before.wall
        ours = {role: after.procs[role] - before.procs[role] for role in before.procs}
        other = max(0.0, (after.busy - before.busy) - sum(ours.values()))
        capacity = wall * (psutil.cpu_count() or 1)
        out = {f"{role}_ms_per_req": 1000 * used / max(requests, 1) for role, used in ours.items()}
        out["other_s"] = other
        out["other_pct"] = 100 * other / capacity if capacity else 0.0
        out["steal_s"] = after.steal - before.steal
        return out


# --- child processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StartError(RuntimeError):
    pass


class Child:
    """A process this script started, in its own session (Ctrl-C reaches only us); stopped by its PID."""

    def __init__(self, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
        self.ps = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM this PID, SIGKILL it after ``grace`` seconds; idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def kill_if_running(proc: psutil.Process | None) -> bool:
    """SIGKILL a process we know by PID and start time if it still runs; True if it had to be killed."""
    if proc is None or not proc.is_running():
        return False
    try:
        proc.kill()
        proc.wait(10)
    except psutil.NoSuchProcess:
        return False
    return True


async def wait_healthy(client: httpx.AsyncClient, base_url: str, child: Child, timeout: float) -> None:
    """Poll ``/health`` until it answers 200 (with ``{"status": "ok"}`` from llama-server); fail early if the child
    exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive:
            raise StartError(f"{child.argv[0]} exited with {child.proc.returncode}:\n{child.tail()}")
        try:
            response = await client.get(f"{base_url}/health", timeout=2.0)
            # llama-server answers {"status": "ok"}; llmhost answers 200 with an empty body, as vLLM and TGI do
            if response.status_code == 200 and (not response.content or response.json().get("status") == "ok"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(0.1)
    raise StartError(f"{child.argv[0]} not healthy after {timeout:.0f} s:\n{child.tail()}")


QUIET_LLMHOST = {"scan_ollama": False, "scan_hf_cache": False, "gpu_backend": "none", "log_level": "warning"}


def start_llmhost(workdir: Path, name: str, config: Mapping[str, Any], port: int) -> Child:
    """``llmhost serve`` on 127.0.0.1:``port`` with ``config`` over isolated, quiet defaults (no store scans, no
    GPU probing, warnings only); ``LLMHOST_*`` variables are not passed on."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**QUIET_LLMHOST, **config}), encoding="utf-8")
    argv = [sys.executable, "-m", "llmhost", "serve", "--config", str(path), "--port", str(port)]
    return Child(argv, workdir / f"{name}.log", env=clean_env("LLMHOST_"))


def clean_env(prefix: str) -> dict[str, str]:
    """This environment without variables starting with ``prefix`` (so they cannot override a config)."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefix)}

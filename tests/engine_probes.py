"""Looking inside a running llama-server (its /slots and /metrics) to prove what llmhost did to it."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conftest import engine_binary, engine_port, free_port, model_file

IDLE_TIMEOUT = 10.0
CTX = 1024
STARTUP_TIMEOUT = 30.0


def slots(engine: psutil.Process) -> list[dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{engine_port(engine)}/slots", timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def busy_slots(engine: psutil.Process) -> list[int]:
    return [slot["id"] for slot in slots(engine) if slot["is_processing"]]


def tokens_predicted(engine: psutil.Process) -> float:
    """The engine's own count of generated tokens (llama-server --metrics)."""
    response = httpx.get(f"http://127.0.0.1:{engine_port(engine)}/metrics", timeout=5)
    response.raise_for_status()
    for line in response.text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total "):
            return float(line.split()[1])
    raise AssertionError("llama-server /metrics has no llamacpp:tokens_predicted_total")


def assert_cancelled(engine: psutil.Process, what: str) -> None:
    """No slot generating within IDLE_TIMEOUT, and far fewer tokens generated than the 2000 asked for
    (on a fast machine 2000 tokens can take less than IDLE_TIMEOUT, so idleness alone proves nothing)."""
    busy = wait_idle(engine)
    assert not busy, f"slots {busy} still generating {IDLE_TIMEOUT:.0f} s after {what}"
    generated = tokens_predicted(engine)
    assert generated < 1000, f"the engine generated {generated:.0f} tokens after {what}: it was not cancelled"


def wait_idle(engine: psutil.Process, timeout: float = IDLE_TIMEOUT) -> list[int]:
    """Poll the engine's /slots until no slot is processing; return the busy slots left at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        busy = busy_slots(engine)
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.1)


@contextlib.contextmanager
def running_engine(log: Path, *flags: str, port: int | None = None) -> Iterator[str]:
    """A llama-server started by a test, killed by its pid afterwards; yields its base URL."""
    port = port or free_port()
    argv = [str(engine_binary()), "-m", str(model_file()), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["-c", str(CTX), "-np", "1", "-t", "1", "--no-repack", *flags]
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, process, log)
        yield base_url
    finally:
        process.kill()
        process.wait(timeout=10)


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama-server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"llama-server not healthy after {STARTUP_TIMEOUT:.0f} s: {log.read_text()[-2000:]}")

"""Shared fixtures: the real llama-server, the real default model, and a real `llmhost serve` subprocess.

Integration tests never mock or fake anything: they start ``python -m llmhost serve`` with a temporary
config that points at the engine and the model that ``llmhost setup`` installed, and talk to it over HTTP
with httpx and the openai SDK. When the engine or the model is missing the tests fail (never skip): CI runs
``llmhost setup`` before pytest, so a missing file is a broken setup, not an optional feature.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import psutil
import pytest
import yaml

from llmhost.config import ConfigError, load_settings
from llmhost.installer import InstallError, default_model_path, resolve_engine

DEFAULT_MODEL = "smollm2-135m-instruct:q4_1"
ALIAS = "org/smol:tiny"  # an alias with "/" and ":" to exercise model ids that look like paths
MAX_REQUEST_BYTES = 1 << 20
ENGINE_NAME = "llama-server"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


# --- the engine and the model ------------------------------------------------------------------------


@functools.cache
def _located() -> tuple[Path, Path]:
    setup_hint = "run `llmhost setup` (make test does it before pytest)"
    try:
        settings = load_settings()
        binary = resolve_engine(settings)
    except (ConfigError, InstallError) as exc:
        pytest.fail(f"cannot locate llama-server: {exc}", pytrace=False)
    if binary is None:
        pytest.fail(f"llama-server is not installed and not on PATH: {setup_hint}", pytrace=False)
    model = default_model_path(settings)
    if not model.is_file():
        pytest.fail(f"the default model {model} is missing: {setup_hint}", pytrace=False)
    with open(model, "rb") as handle:
        if handle.read(4) != b"GGUF":
            pytest.fail(f"{model} is not a GGUF file: {setup_hint}", pytrace=False)
    return binary.resolve(), model.resolve()


def engine_binary() -> Path:
    """The llama-server that ``llmhost setup`` installed (fails the test when it is absent)."""
    return _located()[0]


def model_file() -> Path:
    """The default model file (fails the test when it is absent)."""
    return _located()[1]


# --- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_engine(proc: psutil.Process) -> bool:
    try:
        argv = proc.cmdline()
    except psutil.Error:
        return False
    return bool(argv) and Path(argv[0]).name == ENGINE_NAME


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a killed child nobody reaped yet counts as dead)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_dead(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process is gone; return those still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [proc for proc in procs if is_alive(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def engine_port(proc: psutil.Process) -> int:
    argv = proc.cmdline()
    return int(argv[argv.index("--port") + 1])


def clean_env() -> dict[str, str]:
    """The environment for llmhost subprocesses: nothing from LLMHOST_* may leak in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLMHOST_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_config(directory: Path, data_dir: Path, **extra: Any) -> Path:
    """A config for the real engine and the real model, isolated in ``data_dir``."""
    config: dict[str, Any] = {
        "data_dir": str(data_dir),
        "model_dirs": [str(model_file().parent)],
        "scan_ollama": False,
        "scan_hf_cache": False,
        "max_request_bytes": MAX_REQUEST_BYTES,
        "engine": {"llama_server": str(engine_binary())},
        # threads 1: with 2 busy threads on a 2-core machine that runs anything else, llama.cpp's spinning
        # thread pool is 100x slower (measured); one thread keeps the suite fast on shared CI machines.
        "models": {DEFAULT_MODEL: {"parallel": 2, "ctx": 2048, "threads": 1, "aliases": [ALIAS]}},
    }
    config.update(extra)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m llmhost ARGS`` with a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "llmhost", *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )


@dataclass
class LlmhostServer:
    """A running ``llmhost serve`` subprocess."""

    base_url: str
    port: int
    proc: subprocess.Popen[bytes]
    config_path: Path
    data_dir: Path
    log_path: Path

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def service_process(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def engines(self) -> list[psutil.Process]:
        """The live llama-server processes below this service."""
        try:
            children = self.service_process().children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [child for child in children if is_engine(child) and is_alive(child)]

    def engine(self) -> psutil.Process:
        """The one llama-server of this service (the test fails when there is not exactly one)."""
        engines = self.engines()
        assert len(engines) == 1, f"expected one llama-server child, found {[e.pid for e in engines]}"
        return engines[0]

    def engine_url(self) -> str:
        return f"http://127.0.0.1:{engine_port(self.engine())}"

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"llmhost serve exited with {code} during startup:\n{self.log_tail()}", pytrace=False)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail(f"llmhost serve did not answer /health within {timeout:.0f} s:\n{self.log_tail()}", pytrace=False)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the service and wait for it; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"llmhost serve ignored {sig.name} for {timeout:.0f} s:\n{self.log_tail()}", pytrace=False)


def start_server(directory: Path, *, data_dir: Path | None = None, **extra: Any) -> LlmhostServer:
    """Start ``python -m llmhost serve`` on a free port and wait until /health answers."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or directory / "data"
    config = write_config(directory, data_dir, **extra)
    port = free_port()
    log_path = directory / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmhost", "serve", "--config", str(config), "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=directory,
        )
    server = LlmhostServer(f"http://127.0.0.1:{port}", port, proc, config, data_dir, log_path)
    server.wait_healthy()
    return server


def shutdown_and_check(server: LlmhostServer) -> None:
    """SIGTERM the service (if it still runs) and assert that no llama-server it started survives."""
    engines = server.engines()  # find them before the service goes away and they get reparented
    if server.proc.poll() is None:
        server.stop(signal.SIGTERM)
    survivors = wait_dead(engines, timeout=5)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not survivors, f"llama-server processes survived the service: {[p.pid for p in survivors]}"


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    """One shared service for most integration tests."""
    running = start_server(tmp_path_factory.mktemp("llmhost-shared"))
    try:
        yield running
    finally:
        shutdown_and_check(running)


@pytest.fixture
def start_llmhost(tmp_path: Path) -> Iterator[Callable[..., LlmhostServer]]:
    """A factory for extra services (fresh engine state); every one is stopped and checked at teardown."""
    started: list[LlmhostServer] = []

    def start(name: str = "extra", **kwargs: Any) -> LlmhostServer:
        running = start_server(tmp_path / f"{name}-{len(started)}", **kwargs)
        started.append(running)
        return running

    yield start
    errors = []
    for running in started:
        try:
            shutdown_and_check(running)
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "; ".join(errors)


@pytest.fixture(scope="session")
def openai_client(server: LlmhostServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
async def async_openai_client(server: LlmhostServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="test", max_retries=0, timeout=120)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def http(server: LlmhostServer) -> Iterator[httpx.Client]:
    """Raw HTTP to the shared service, for wire-level assertions."""
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def ollama_client(server: LlmhostServer) -> ollama.Client:
    """The real ollama-python client, pointed at the shared service."""
    return ollama.Client(host=server.base_url, timeout=120)

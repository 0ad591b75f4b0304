"""One model's llama-server: start, readiness, crash restart with backoff, stop.

The engine is a thin layer over ``ChildProcess``: it knows llama-server's argv and /health, keeps the
memory report parsed from stderr, and owns the HTTP pool to the child (``UpstreamClient``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

import httpx
import structlog

from llmhost.config import EngineSettings, ModelProfile
from llmhost.engines.llamaserver import MemoryReport, build_argv
from llmhost.engines.process import ChildProcess, State
from llmhost.types import EngineUnavailable
from llmhost.upstream import UpstreamClient

log = structlog.get_logger(__name__)

HEALTH_POLL = 0.05  # seconds between /health checks while an engine loads, unless its log says it is ready
READY_HINTS = ("llama_server: model loaded", "update_slots: all slots are idle")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    """A supervised llama-server for one model."""

    def __init__(
        self,
        model: str,
        model_path: Path,
        profile: ModelProfile,
        *,
        binary: Path,
        settings: EngineSettings,
        pid_dir: Path,
        engines: int = 1,
    ) -> None:
        self.model = model
        self.engines = engines  # engines sharing the CPU when this one starts: its default share of the cores
        self.model_path = model_path
        self.profile = profile
        self.binary = binary
        self.settings = settings
        self.pid_dir = pid_dir
        self.memory = MemoryReport()
        self._ready_hint = asyncio.Event()  # set by the engine's own "ready" log line; /health confirms it
        self.port = 0
        self.process: ChildProcess | None = None
        self.client: UpstreamClient | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self.last_error: str | None = None
        self._load: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def state(self) -> State:
        return self.process.state if self.process else State.STOPPED

    @property
    def argv(self) -> list[str]:
        return self.process.argv if self.process else []

    async def ensure_ready(self) -> UpstreamClient:
        """Start the engine if needed; concurrent callers share one load."""
        if self.state == State.READY and self.client is not None:
            assert self.process is not None
            if not self.process.exited.is_set() and not self.process.defunct():
                return self.client
            self._mark_crashed(self.process)  # died before its watcher ran: this request restarts it
        if self._load is None or self._load.done():
            self._load = asyncio.create_task(self._start(), name=f"load-{self.model}")
        await asyncio.shield(self._load)
        assert self.client is not None
        return self.client

    async def _start(self) -> None:
        self._stopping = False
        for attempt in (1, 2):  # a second try covers losing the free port to another process
            try:
                await self._start_once()
                return
            except EngineUnavailable:
                if attempt == 2 or not self._lost_port():
                    raise

    def _lost_port(self) -> bool:
        tail = "\n".join(self.process.tail(20)) if self.process else ""
        return "bind" in tail.lower() and "port" in tail.lower()

    async def _start_once(self) -> None:
        await self._discard_process()
        self.port = free_port()
        self.memory.reset()
        self._ready_hint.clear()
        argv = build_argv(self.binary, self.model_path, self.profile, self.port, self.engines)
        self.process = ChildProcess(
            argv, name=self.model, pid_dir=self.pid_dir, log_lines=self.settings.log_lines, on_line=self._on_line
        )
        log.info("starting engine", model=self.model, port=self.port)
        await self.process.spawn()
        self.client = UpstreamClient(f"http://127.0.0.1:{self.port}", request_timeout=self.settings.request_timeout)
        await self._wait_healthy(self.process, self.client)
        self.process.transition(State.READY)
        self.started_at = time.time()
        self.last_error = None
        self._watch = asyncio.create_task(self._watch_exit(self.process), name=f"watch-{self.model}")
        log.info("engine ready", model=self.model, port=self.port, memory_mib=self.memory.total_mib())

    async def _wait_healthy(self, process: ChildProcess, client: UpstreamClient) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            if process.exited.is_set():
                raise self._failed_start(process, process.describe_exit())
            with contextlib.suppress(httpx.HTTPError):
                health = await client.get_json("/health", timeout=2.0)
                if health.get("status") == "ok":
                    return
            await self._until_ready_hint(HEALTH_POLL)
        await process.terminate(self.settings.stop_grace)
        raise self._failed_start(process, f"not ready after {self.settings.startup_timeout:.0f} s")

    def _on_line(self, line: str) -> None:
        self.memory.feed(line)
        if any(hint in line for hint in READY_HINTS):
            self._ready_hint.set()

    async def _until_ready_hint(self, timeout: float) -> None:
        """Wait for the engine to say it is ready, or ``timeout``: a cold start is not charged a polling interval."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready_hint.wait(), timeout)
        self._ready_hint.clear()

    def _failed_start(self, process: ChildProcess, why: str) -> EngineUnavailable:
        tail = " | ".join(line for line in process.tail(8) if line.strip())
        self.last_error = f"engine for {self.model} failed to start: {why}. Last output: {tail}"
        if process.state == State.STARTING:
            process.transition(State.FAILED, self.last_error)
        return EngineUnavailable(self.last_error, retry_after=5)

    async def _watch_exit(self, process: ChildProcess) -> None:
        await process.exited.wait()
        if self._stopping or process.state != State.READY:
            return
        self._mark_crashed(process)
        await self._restart_with_backoff()

    def _mark_crashed(self, process: ChildProcess) -> None:
        self.last_error = f"engine for {self.model} crashed: {process.describe_exit()}"
        process.transition(State.FAILED, self.last_error)
        log.error("engine crashed", model=self.model, reason=self.last_error, tail=process.tail(5))

    def crashed(self) -> bool:
        """The process is gone, or going: a request that failed to reach it may be retried."""
        process = self.process
        return process is None or process.exited.is_set() or self.state != State.READY or process.defunct()

    async def wait_exit(self, timeout: float) -> None:
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.exited.wait(), timeout)

    async def _restart_with_backoff(self) -> None:
        if self.restarts >= self.settings.max_restarts:
            log.error("engine gave up restarting; the next request tries again", model=self.model)
            return
        backoff = self.settings.restart_backoff or [1.0]
        delay = backoff[min(self.restarts, len(backoff) - 1)]
        self.restarts += 1
        await asyncio.sleep(delay)
        if self._stopping or self.state != State.FAILED:
            return
        with contextlib.suppress(EngineUnavailable):
            await self.ensure_ready()

    def note_success(self) -> None:
        self.restarts = 0

    async def stop(self) -> None:
        self._stopping = True
        if self._load is not None and not self._load.done():
            self._load.cancel()
            with contextlib.suppress(BaseException):
                await self._load
        await self._discard_process()

    async def _discard_process(self) -> None:
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        process = self.process
        if process is not None and process.state not in (State.STOPPED,):
            await process.terminate(self.settings.stop_grace)

    def kill_now(self) -> None:
        if self.process is not None:
            self.process.kill_now()

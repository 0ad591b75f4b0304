"""Which engine serves a model: start on first use, share concurrent loads, track use, stop all.

This is the foundation's scheduler: load on demand and keep loaded. Memory fit, keep-alive, eviction
and bounded queues build on this class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog

from llmhost.config import ModelProfile, Settings
from llmhost.engines.engine import Engine
from llmhost.engines.process import reap_orphans
from llmhost.types import EngineUnavailable
from llmhost.upstream import UpstreamClient

log = structlog.get_logger(__name__)


class Scheduler:
    def __init__(self, settings: Settings, binary: Path | None) -> None:
        self.settings = settings
        self.binary = binary
        self.engines: dict[str, Engine] = {}
        self.pid_dir = settings.run_dir

    def reap_orphans(self) -> list[int]:
        return reap_orphans(self.pid_dir)

    def engine(self, model: str, path: Path, profile: ModelProfile) -> Engine:
        engine = self.engines.get(model)
        if engine is None or engine.model_path != path or engine.profile != profile:
            if engine is not None:
                asyncio.get_running_loop().create_task(engine.stop())
            engine = self._new_engine(model, path, profile)
            self.engines[model] = engine
        return engine

    def _new_engine(self, model: str, path: Path, profile: ModelProfile) -> Engine:
        if self.binary is None:
            raise EngineUnavailable(
                "no llama-server binary: run `llmhost setup`, set engine.llama_server, or pass --llama-server",
                retryable=False,
            )
        return Engine(
            model, path, profile, binary=self.binary, settings=self.settings.engine, pid_dir=self.pid_dir
        )

    @asynccontextmanager
    async def use(self, model: str, path: Path, profile: ModelProfile) -> AsyncIterator[tuple[Engine, UpstreamClient]]:
        """Hold the engine for one request; the client is ready when this yields."""
        engine = self.engine(model, path, profile)
        engine.in_flight += 1
        try:
            client = await engine.ensure_ready()
            yield engine, client
        finally:
            engine.in_flight -= 1
            engine.last_used = time.monotonic()

    async def unload(self, model: str) -> bool:
        engine = self.engines.pop(model, None)
        if engine is None:
            return False
        await engine.stop()
        return True

    async def stop_all(self) -> None:
        engines = list(self.engines.values())
        self.engines.clear()
        await asyncio.gather(*(engine.stop() for engine in engines), return_exceptions=True)

    def kill_all_now(self) -> None:
        for engine in self.engines.values():
            engine.kill_now()

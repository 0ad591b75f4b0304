"""All configured providers: their probe loop, and which of them serve a model name."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from llmhost.config import Settings
from llmhost.models.names import canonical_name
from llmhost.providers.provider import Provider

log = structlog.get_logger(__name__)

TICK = 0.5  # seconds between checks for a due probe


class ProviderPool:
    def __init__(self, settings: Settings) -> None:
        self.providers = [Provider(provider) for provider in settings.providers]
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """First probes run in the background: a slow upstream never delays startup."""
        if self.providers:
            self._loop = asyncio.create_task(self._probe_loop(), name="provider-probes")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for provider in self.providers:
            await provider.aclose()

    def get(self, name: str) -> Provider | None:
        return next((provider for provider in self.providers if provider.name == name), None)

    def lookup(self, model: str) -> list[tuple[Provider, str]]:
        """Every provider serving ``model`` (Ollama-style equivalent names match), with its upstream id."""
        wanted = canonical_name(model)
        found = []
        for provider in self.providers:
            for served, upstream_id in provider.served_models().items():
                if served == model or canonical_name(served) == wanted:
                    found.append((provider, upstream_id))
                    break
        return found

    def models(self) -> list[tuple[str, Provider]]:
        """(served name, provider) for every remote model, in configuration order."""
        return [(served, provider) for provider in self.providers for served in provider.served_models()]

    async def probe_all(self) -> None:
        await asyncio.gather(*(provider.probe() for provider in self.providers))

    async def _probe_loop(self) -> None:
        while True:
            now = time.monotonic()
            due = [provider for provider in self.providers if provider.status.next_probe <= now]
            if due:
                await asyncio.gather(*(provider.probe() for provider in due))
            await asyncio.sleep(TICK)

"""Serving a model that several targets (the local engine, remote providers) offer: pick them in routing
order, fail over while nothing has reached the client, and keep each provider's load and health current."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx
import structlog

from llmhost import routing
from llmhost.providers import Provider, ProviderPool
from llmhost.telemetry.monitor import Monitor
from llmhost.types import EngineFailed, EngineUnavailable, LlmhostError, StreamEvent

log = structlog.get_logger(__name__)

T = TypeVar("T")
LOCAL = "local"
Remote = list[tuple[Provider, str]]  # providers serving a model, with the upstream's id for it


class Targets:
    def __init__(
        self,
        providers: ProviderPool,
        monitor: Monitor,
        local_candidate: Callable[[str], routing.Candidate | None],
    ) -> None:
        self.providers = providers
        self.monitor = monitor
        self.local_candidate = local_candidate

    def order(self, model: str, remote: Remote) -> list[routing.Candidate]:
        candidates = [
            routing.Candidate(p.name, p.outstanding, p.settings.weight, p.settings.priority, p.available)
            for p, _ in remote
        ]
        local = self.local_candidate(model)
        return routing.order([local, *candidates] if local is not None else candidates)

    async def stream(
        self,
        model: str,
        remote: Remote,
        open_local: Callable[[], AsyncIterator[StreamEvent]],
        open_remote: Callable[[Provider, str], AsyncIterator[StreamEvent]],
    ) -> AsyncIterator[StreamEvent]:
        """The first target that produces an event serves the request; before that, a failing target is
        skipped (failover); after it, a failure reaches the client as its dialect's error."""
        upstream_ids = {provider.name: upstream_id for provider, upstream_id in remote}
        failures: list[str] = []
        for candidate in self.order(model, remote):
            provider = self.providers.get(candidate.key)
            if provider is None:
                events = open_local()
            else:
                events = self._remote_stream(provider, model, open_remote(provider, upstream_ids[provider.name]))
            try:
                first = await anext(events)
            except StopAsyncIteration:
                return
            except LlmhostError as exc:
                if not can_fail_over(exc):
                    raise
                log.warning("target failed before the first byte; trying the next", model=model, target=candidate.key)
                failures.append(f"{candidate.key}: {exc.message}")
                continue
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            return
        raise no_target(model, failures)

    async def call(
        self,
        model: str,
        remote: Remote,
        call_local: Callable[[], Awaitable[T]],
        call_remote: Callable[[Provider, str], Awaitable[T]],
    ) -> T:
        """The same order and failover for a request that is not streamed (embeddings)."""
        upstream_ids = {provider.name: upstream_id for provider, upstream_id in remote}
        failures: list[str] = []
        for candidate in self.order(model, remote):
            provider = self.providers.get(candidate.key)
            try:
                if provider is None:
                    return await call_local()
                return await self._remote_call(provider, call_remote(provider, upstream_ids[provider.name]))
            except LlmhostError as exc:
                if not can_fail_over(exc):
                    raise
                failures.append(f"{candidate.key}: {exc.message}")
        raise no_target(model, failures)

    async def _remote_stream(
        self, provider: Provider, model: str, upstream: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        track = self.monitor.track(model, target=provider.name)
        provider.outstanding += 1
        try:
            track.prefill()
            async for event in upstream:
                track.event(event)
                yield event
            track.finish()
        except BaseException as exc:
            if unreachable(exc):
                provider.mark_failed(str(exc))
            track.fail(exc)
            raise
        finally:
            provider.outstanding -= 1

    async def _remote_call(self, provider: Provider, call: Awaitable[T]) -> T:
        provider.outstanding += 1
        try:
            return await call
        except LlmhostError as exc:
            if unreachable(exc):
                provider.mark_failed(exc.message)
            raise
        finally:
            provider.outstanding -= 1


def no_target(model: str, failures: list[str]) -> EngineUnavailable:
    return EngineUnavailable(f"no target of {model} could answer: {'; '.join(failures)}", retry_after=2)


def unreachable(error: BaseException) -> bool:
    """The upstream could not be reached, or its connection broke: take it out of the rotation."""
    return isinstance(error, EngineUnavailable) or (
        isinstance(error, EngineFailed) and isinstance(error.__cause__, httpx.TransportError)
    )


def can_fail_over(error: LlmhostError) -> bool:
    """Another target may succeed where this one failed: not when the request itself is at fault."""
    return error.status >= 500 or error.status == 429

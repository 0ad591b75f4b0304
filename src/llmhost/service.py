"""The core: resolve a model, hold its engine for the request, and stream internal events.

Dialect routers call only this; it knows nothing of wire formats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from llmhost import min_tokens, routing, tools
from llmhost.auth import KeyRing
from llmhost.config import ModelProfile, Settings
from llmhost.engines.engine import Engine
from llmhost.engines.llamaserver import embeddings_enabled
from llmhost.engines.process import State
from llmhost.engines.scheduler import Scheduler
from llmhost.installer import resolve_engine
from llmhost.models import pull as registry
from llmhost.models.capabilities import supports_thinking
from llmhost.models.catalog import Catalog, ModelEntry
from llmhost.protocols import openai
from llmhost.providers import Provider, ProviderPool
from llmhost.reasoning import split_reasoning
from llmhost.targets import LOCAL, Targets
from llmhost.telemetry.backends import make_gpus
from llmhost.telemetry.monitor import CURRENT, EngineEndpoint, Monitor
from llmhost.types import (
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    Embeddings,
    EmbedRequest,
    EngineUnavailable,
    InvalidRequest,
    LlmhostError,
    ModelNotFound,
    Overloaded,
    ReasoningDelta,
    StreamEvent,
    Tokenized,
    TokenizeRequest,
)
from llmhost.upstream import UpstreamClient

log = structlog.get_logger(__name__)

RESTART_WAIT = 2.0  # seconds to let a dying engine finish exiting before it is started again
DEATH_NOTICE = 0.5  # seconds a refused connection may precede the engine's exit becoming visible


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings)
        gpus = make_gpus(settings)
        self.scheduler = Scheduler(settings, resolve_engine(settings), gpus)
        self.monitor = Monitor(settings, gpus)
        self.overrides: dict[str, ModelProfile] = {}  # profiles set from the engine manager, until stopped
        self.providers = ProviderPool(settings)
        self.keys = KeyRing(settings.auth)
        self.monitor.on_tokens = self.keys.charge_tokens
        self.targets = Targets(self.providers, self.monitor, self._local_candidate)

    async def start(self) -> None:
        self.scheduler.reap_orphans()
        self.scheduler.start()
        entries = await asyncio.to_thread(self.catalog.scan)
        await self.monitor.start(self.running_engines)
        await self.providers.start()
        log.info("catalog loaded", models=len(entries), engine=str(self.scheduler.binary))

    async def stop(self) -> None:
        await self.scheduler.stop_all()
        await self.providers.stop()
        await self.monitor.stop()

    def status_line(self) -> str:
        """One line for systemd's STATUS: what is served and how busy it is."""
        loaded = sum(1 for slot in self.scheduler.models.values() if slot.engine is not None)
        active = len(self.monitor.tracker.active())
        return f"serving {len(self.catalog.entries())} models; {loaded} engines loaded; {active} requests active"

    def running_engines(self) -> list[EngineEndpoint]:
        running = []
        for slot in self.scheduler.models.values():
            engine = slot.engine
            if engine is not None and engine.state == State.READY and engine.process is not None:
                running.append(EngineEndpoint(slot.name, f"http://127.0.0.1:{engine.port}", engine.process.pid))
        return running

    def profile(self, entry: ModelEntry) -> ModelProfile:
        """The engine manager's parameters while set, else the configured profile."""
        return self.overrides.get(entry.name) or self.catalog.profile(entry)

    # the engine manager ---------------------------------------------------------------------------------

    async def start_engine(self, name: str, overrides: dict[str, Any]) -> Engine:
        """Start (or restart with new parameters) a model's engine; parameters are checked like config."""
        entry = self.catalog.get(name)
        profile = profile_with(self.catalog.profile(entry), overrides)
        cap = self.settings.scheduler.max_loaded
        running = [
            slot for slot in self.scheduler.models.values() if slot.engine is not None and slot.name != entry.name
        ]
        if cap is not None and len(running) >= cap:
            raise Overloaded(
                f"at most {cap} engine{'s' if cap > 1 else ''} may run at once (scheduler.max_loaded); "
                f"stop one of {', '.join(slot.name for slot in running)} first",
                code="engine_cap",
            )
        previous = self.overrides.get(entry.name)
        self.overrides[entry.name] = profile
        try:
            return await self.scheduler.load(entry, profile)
        except LlmhostError:
            if previous is None:  # the model goes back to its configured profile, ready for the next request
                self.overrides.pop(entry.name, None)
            else:
                self.overrides[entry.name] = previous
            raise

    async def stop_engine(self, name: str) -> bool:
        entry = self.catalog.get(name)
        self.overrides.pop(entry.name, None)
        return await self.scheduler.unload(entry.name)

    async def restart_engine(self, name: str) -> Engine:
        entry = self.catalog.get(name)
        await self.scheduler.unload(entry.name)
        return await self.scheduler.load(entry, self.profile(entry))

    def resolve(self, name: str) -> ModelEntry:
        try:
            return self.catalog.get(name)
        except ModelNotFound:
            if self.settings.unknown_model == "default":
                default = self.catalog.default_entry()
                if default is not None:
                    return default
            raise

    # requests: routed to the local engine and/or remote providers ------------------------------------

    def allow(self, model: str) -> None:
        """The calling key may use ``model`` (403 otherwise); every request names its model through here."""
        context = CURRENT.get()
        if context is not None and context.key is not None:
            self.keys.check_model(self.keys.by_name(context.key), model)

    def stream_chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.allow(req.model)
        remote = self.providers.lookup(req.model)
        if not remote:
            return self._local_chat(req)
        return self.targets.stream(
            req.model,
            remote,
            lambda: self._local_chat(req),
            lambda provider, upstream_id: provider.client.stream_chat(replace(req, model=upstream_id)),
        )

    def stream_completion(self, req: CompletionRequest) -> AsyncIterator[StreamEvent]:
        self.allow(req.model)
        remote = self.providers.lookup(req.model)
        if not remote:
            return self._local_completion(req)
        return self.targets.stream(
            req.model,
            remote,
            lambda: self._local_completion(req),
            lambda provider, upstream_id: provider.client.stream_completion(
                dataclasses.replace(req, model=upstream_id)
            ),
        )

    async def embed(self, req: EmbedRequest) -> Embeddings:
        self.allow(req.model)
        remote = self.providers.lookup(req.model)
        if not remote:
            return await self._local_embed(req)
        return await self.targets.call(
            req.model,
            remote,
            lambda: self._local_embed(req),
            lambda provider, upstream_id: provider.client.embed(replace(req, model=upstream_id)),
        )

    def remote_models(self) -> list[tuple[str, Provider]]:
        """(name, provider) of every model the providers serve."""
        return self.providers.models()

    def _local_candidate(self, model: str) -> routing.Candidate | None:
        """The local engine as a routing target for ``model``, when the catalog has it."""
        try:
            entry = self.catalog.get(model)
        except ModelNotFound:
            return None
        slot = self.scheduler.models.get(entry.name)
        busy = slot.in_flight + slot.waiting if slot is not None else 0
        failed = slot is not None and slot.engine is not None and slot.engine.state == State.FAILED
        return routing.Candidate(LOCAL, busy, healthy=not failed)

    # the local engines ----------------------------------------------------------------------------------

    def _local_chat(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        entry = self.resolve(req.model)
        if any(message.images for message in req.messages):
            raise InvalidRequest(f"the model {entry.name} has no vision support; remove the images", param="messages")
        profile = self.profile(entry)
        if req.think and not supports_thinking(entry, profile):
            raise InvalidRequest(f'"{req.model}" does not support thinking', param="think")
        if tools.uses_tools(req) and profile.tool_calls == "prompt":
            prompted = tools.prompted_request(req)
            return tools.tool_events(self._stream(entry, profile, req.keep_alive, lambda c: c.stream_chat(prompted)))
        req = dataclasses.replace(req, sampling=min_tokens.prepare(req.sampling))
        if min_tokens.needed(req.sampling):
            events = self._stream(entry, profile, req.keep_alive, lambda c: min_tokens.stream(req, c.stream_chat))
        else:
            events = self._stream(entry, profile, req.keep_alive, lambda client: client.stream_chat(req))
        if profile.reasoning == "tags":
            events = split_reasoning(events)
        return without_reasoning(events) if req.think is False else events

    def _local_completion(self, req: CompletionRequest) -> AsyncIterator[StreamEvent]:
        entry = self.resolve(req.model)
        profile = self.profile(entry)
        req = dataclasses.replace(req, sampling=min_tokens.prepare(req.sampling))
        if min_tokens.needed(req.sampling):
            return self._stream(entry, profile, req.keep_alive, lambda c: min_tokens.stream(req, c.stream_completion))
        return self._stream(entry, profile, req.keep_alive, lambda client: client.stream_completion(req))

    async def load(self, name: str, keep_alive: float | None) -> bool:
        """Load a model without generating (Ollama's empty prompt); True when keep_alive unloaded it again."""
        entry = self.resolve(name)
        async with self.scheduler.session(entry, self.profile(entry), keep_alive):
            pass
        return keep_alive == 0

    def load_seconds(self, name: str, since: float) -> float:
        """How long a request that started at ``since`` (unix time) waited for its model's engine to load."""
        try:
            slot = self.scheduler.models.get(self.resolve(name).name)
        except ModelNotFound:
            return 0.0  # a provider's model: its load time is the upstream's
        ready = slot.engine.started_at if slot is not None and slot.engine is not None else None
        return max(0.0, ready - since) if ready is not None and ready > since else 0.0

    async def delete_model(self, name: str) -> str:
        entry = self.catalog.get(name)  # never the default-model fallback for a delete
        removed = await asyncio.to_thread(self.catalog.delete, name)
        if entry.name not in {e.name for e in self.catalog.entries()}:
            await self.scheduler.unload(entry.name)
        return removed

    async def pull(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Ollama registry pull into llmhost's own store; the catalog is rescanned after success."""
        ref = registry.parse_reference(name)
        base = registry.registry_url(ref, self.settings.ollama_registry)
        timeout = httpx.Timeout(self.settings.engine.request_timeout, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            async for progress in registry.pull(ref, base, self.settings.pulled_dir, client):
                if progress.get("status") == "success":
                    await asyncio.to_thread(self.catalog.scan)
                yield progress

    async def _local_embed(self, req: EmbedRequest) -> Embeddings:
        entry = self.resolve(req.model)
        profile = self.profile(entry)
        if not profile.embeddings:
            raise InvalidRequest(f"embeddings are disabled for {entry.name} (profile: embeddings: false)")
        if not embeddings_enabled(profile):
            raise InvalidRequest(
                f"embeddings need a power-of-two slot count with this llama.cpp build; {entry.name} has "
                f"parallel: {profile.parallel}"
            )
        for attempt in (1, 2):
            async with self.scheduler.session(entry, profile, req.keep_alive) as (engine, client):
                try:
                    result = await client.embed(req)
                except EngineUnavailable:
                    if not await _retry_after_crash(engine, attempt, entry.name):
                        raise
                    continue
                engine.note_success()
                return result
        raise AssertionError("unreachable")

    async def tokenize(self, req: TokenizeRequest) -> Tokenized:
        """llama-server's own tokenizer; the chat form is rendered with the model's template first."""
        entry = self.resolve(req.model)
        profile = self.profile(entry)
        async with self.scheduler.session(entry, profile) as (_, client):
            text = req.prompt
            if req.messages is not None:
                rendered = await client.post_json(
                    "/apply-template", {"messages": [openai.message_to_wire(m) for m in req.messages]}
                )
                text = rendered["prompt"]
            body = {"content": text or "", "add_special": req.add_special, "with_pieces": req.with_pieces}
            tokens = (await client.post_json("/tokenize", body))["tokens"]
        if req.with_pieces:
            ids = [int(t["id"]) for t in tokens]
            pieces = [p if isinstance(p := t["piece"], str) else bytes(p).decode("utf-8", "replace") for t in tokens]
            return Tokenized(ids, pieces, profile.ctx)
        return Tokenized([int(t) for t in tokens], None, profile.ctx)

    async def detokenize(self, req: DetokenizeRequest) -> str:
        entry = self.resolve(req.model)
        async with self.scheduler.session(entry, self.profile(entry)) as (_, client):
            return str((await client.post_json("/detokenize", {"tokens": req.tokens}))["content"])

    async def _stream(
        self,
        entry: ModelEntry,
        profile: ModelProfile,
        keep_alive: float | None,
        open_stream: Callable[[UpstreamClient], AsyncIterator[StreamEvent]],
    ) -> AsyncIterator[StreamEvent]:
        """Events of one request; an engine found dead before the first event is restarted once."""
        track = self.monitor.track(entry.name)
        try:
            for attempt in (1, 2):
                async with self.scheduler.session(entry, profile, keep_alive, track.loading) as (engine, client):
                    track.prefill()
                    started = False
                    try:
                        async for event in open_stream(client):
                            started = True
                            track.event(event)
                            yield event
                    except EngineUnavailable:
                        if started or not await _retry_after_crash(engine, attempt, entry.name):
                            raise
                        continue
                    engine.note_success()
                    track.finish()
                    return
        except BaseException as exc:
            track.fail(exc)
            raise


def profile_with(base: ModelProfile, overrides: dict[str, Any]) -> ModelProfile:
    """``base`` with ``overrides`` applied, validated as the config file would be (a 400 lists every problem)."""
    try:
        return ModelProfile.model_validate(base.model_dump() | overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"invalid engine parameters: {problems}", param="overrides") from None


async def without_reasoning(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """``think: false``: the answer without its reasoning."""
    try:
        async for event in events:
            if not isinstance(event, ReasoningDelta):
                yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _retry_after_crash(engine: Engine, attempt: int, model: str) -> bool:
    """A first attempt that failed because the engine died may run again once the engine has exited. A refused
    connection can come a moment before the dying process shows as dead: give it that moment."""
    if attempt > 1:
        return False
    deadline = time.monotonic() + DEATH_NOTICE
    while not engine.crashed():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    log.warning("engine gone before the request started; restarting it", model=model)
    await engine.wait_exit(RESTART_WAIT)
    return True

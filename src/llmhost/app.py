"""The ASGI application: one process, one event loop, the engines are its children."""

from __future__ import annotations

import asyncio
import atexit
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmhost import __version__
from llmhost.api import admin, errors
from llmhost.api import advisor as advisor_routes
from llmhost.api import dashboard as dashboard_routes
from llmhost.api import ollama as ollama_routes
from llmhost.api import openai as openai_routes
from llmhost.api import telemetry as telemetry_routes
from llmhost.api import tgi as tgi_routes
from llmhost.api import tuning as tuning_routes
from llmhost.api import vllm as vllm_routes
from llmhost.api.common import dialect_for
from llmhost.auth import KeyRing, presented_key
from llmhost.config import Settings
from llmhost.live_config import LiveConfig
from llmhost.service import Service
from llmhost.systemd import Notifier
from llmhost.telemetry.monitor import CURRENT, Monitor, RequestContext
from llmhost.tuner.manager import TuningManager
from llmhost.types import LlmhostError


class RequestIdMiddleware:
    """Pure ASGI (no buffering): every response carries x-request-id, the core sees the request's id and
    dialect through a context variable (for request tracking), and every response is counted by route."""

    def __init__(self, app: ASGIApp, monitor: Monitor) -> None:
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{secrets.token_hex(8)}"
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        dialect = dialect_for(scope["path"])
        token = CURRENT.set(RequestContext(request_id, dialect))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            self.monitor.http_metrics.observe(dialect, route, scope["method"], status, time.perf_counter() - started)


class AuthMiddleware:
    """API keys (when configured): 401/403 in the caller's dialect, per-key limits (429), and the key's name
    passed to the core through the request context."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        metered = scope["method"] == "POST"
        try:
            query = (
                dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
                if scope["path"] == "/api/events"
                else None
            )
            key = self.keys.authorize(scope["method"], scope["path"], presented_key(headers, query))
            if key is not None and metered:
                self.keys.admit(key)
        except LlmhostError as error:
            status, body = errors.renderer_for(scope["path"])(error)
            response = JSONResponse(body, status_code=status, headers=errors.error_headers(error))
            await response(scope, receive, send)
            return
        context = CURRENT.get()
        token = CURRENT.set(replace(context, key=key.name) if context and key else context)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)
            if key is not None and metered:
                self.keys.release(key)


def create_app(settings: Settings, config_path: Path | None = None, overrides: dict[str, Any] | None = None) -> FastAPI:
    """``config_path`` and ``overrides`` (the CLI flags) let the configuration be changed and reloaded live."""
    service = Service(settings)
    live = LiveConfig(service, config_path, overrides or {})
    tuning = TuningManager(service, live)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        atexit.register(service.scheduler.kill_all_now)
        await service.start()
        live.start_watching()
        await tuning.start()
        try:
            yield
        finally:
            app.state.stopping.set()
            await tuning.stop()
            await live.stop_watching()
            Notifier().stopping()
            await service.stop()

    app = FastAPI(title="llmhost", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.service = service
    app.state.live = live
    app.state.tuning = tuning
    app.state.stopping = asyncio.Event()  # set when shutdown starts: endless streams (SSE) end then
    app.add_middleware(AuthMiddleware, keys=service.keys)
    if settings.auth.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.auth.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(RequestIdMiddleware, monitor=service.monitor)
    errors.install(app)
    app.include_router(openai_routes.router)
    app.include_router(admin.router)
    app.include_router(ollama_routes.router)
    app.include_router(vllm_routes.router)
    app.include_router(tgi_routes.router)
    app.include_router(telemetry_routes.router)
    app.include_router(tuning_routes.router)
    app.include_router(advisor_routes.router)
    app.include_router(dashboard_routes.router)

    @app.get("/health")
    async def health() -> Response:
        """vLLM and TGI both answer 200 with an empty body."""
        return Response(status_code=200)

    return app

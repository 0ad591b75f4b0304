"""The ASGI application: one process, one event loop, the engines are its children."""

from __future__ import annotations

import atexit
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmhost import __version__
from llmhost.api import admin, errors
from llmhost.api import ollama as ollama_routes
from llmhost.api import openai as openai_routes
from llmhost.api import tgi as tgi_routes
from llmhost.api import vllm as vllm_routes
from llmhost.config import Settings
from llmhost.service import Service


class RequestIdMiddleware:
    """Pure ASGI (no buffering): every response carries x-request-id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", f"req-{secrets.token_hex(8)}".encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        atexit.register(service.scheduler.kill_all_now)
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="llmhost", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.service = service
    app.add_middleware(RequestIdMiddleware)
    errors.install(app)
    app.include_router(openai_routes.router)
    app.include_router(admin.router)
    app.include_router(ollama_routes.router)
    app.include_router(vllm_routes.router)
    app.include_router(tgi_routes.router)

    @app.get("/health")
    async def health() -> Response:
        """vLLM and TGI both answer 200 with an empty body."""
        return Response(status_code=200)

    return app

"""Errors rendered in the caller's dialect, with status, Retry-After and x-should-retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from llmhost.api.common import ClientGone, dialect_for
from llmhost.protocols import ollama, openai, tgi
from llmhost.types import InvalidRequest, LlmhostError, ModelNotFound

log = structlog.get_logger(__name__)

Renderer = Callable[[LlmhostError], tuple[int, dict[str, Any]]]


def _openai(error: LlmhostError) -> tuple[int, dict[str, Any]]:
    return error.status, openai.error_body(error)


def _ollama(error: LlmhostError) -> tuple[int, dict[str, Any]]:
    return error.status, ollama.error_body(error)


def _tgi(error: LlmhostError) -> tuple[int, dict[str, Any]]:
    return tgi.error_status(error), tgi.error_body(error)


def renderer_for(path: str) -> Renderer:
    """Pick the dialect from the route; OpenAI (and vLLM, which shares it) is the default shape."""
    dialect = dialect_for(path)
    if dialect == "ollama" or path.startswith("/api/"):
        return _ollama
    return _tgi if dialect == "tgi" else _openai


def error_headers(error: LlmhostError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    if error.retryable is False or (error.status >= 500 and error.retry_after is None):
        headers["x-should-retry"] = "false"
    return headers


def error_response(request: Request, error: LlmhostError) -> Response:
    status, body = renderer_for(request.url.path)(error)
    return JSONResponse(body, status_code=status, headers=error_headers(error))


def _status_error(status: int, detail: str) -> LlmhostError:
    error = LlmhostError(detail)
    error.status = status
    error.kind = "not_found" if status == 404 else "invalid_request" if status < 500 else "engine_error"
    return error


def install(app: FastAPI) -> None:
    @app.exception_handler(LlmhostError)
    async def _llmhost(request: Request, exc: LlmhostError) -> Response:
        if exc.status >= 500:
            log.warning("request failed", path=request.url.path, status=exc.status, error=exc.message)
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(request, InvalidRequest(f"{where}: {first['msg']}", param=where or None))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return error_response(request, _status_error(exc.status_code, detail))

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; nginx's "client closed request"

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", path=request.url.path)
        return error_response(request, LlmhostError(f"internal error: {type(exc).__name__}: {exc}"))


__all__ = ["ModelNotFound", "error_response", "install"]

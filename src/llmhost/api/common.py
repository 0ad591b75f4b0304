"""Shared plumbing for dialect routers: bounded JSON bodies and unbuffered streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from llmhost.protocols import tgi
from llmhost.types import InvalidRequest, LlmhostError, RequestTooLarge, StreamEvent

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
VLLM_PATHS = frozenset({"/tokenize", "/detokenize", "/version"})


def dialect_for(path: str) -> str:
    """Which API a route belongs to: ``openai``, ``ollama``, ``tgi``, ``vllm`` or ``llmhost`` (its own)."""
    if path.startswith("/v1/"):
        return "openai"
    if path.startswith("/api/"):
        return "llmhost" if path.startswith(("/api/metrics", "/api/progress", "/api/events")) else "ollama"
    if path in tgi.PATHS:
        return "tgi"
    return "vllm" if path in VLLM_PATHS else "llmhost"


async def read_json(request: Request) -> Any:
    limit: int = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc


async def first_event(events: AsyncIterator[StreamEvent]) -> StreamEvent | None:
    """Pull the first event so that errors before the first byte become a proper HTTP status."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise


class ClientGone(Exception):
    """The client disconnected before a non-streamed answer was complete."""


async def collect(request: Request, events: AsyncIterator[StreamEvent], sink: Callable[[StreamEvent], None]) -> None:
    """Feed every event to ``sink``; a client that disconnects meanwhile cancels the engine request."""

    async def drain() -> None:
        async for event in events:
            sink(event)

    work = asyncio.create_task(drain())
    watch = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            await events.aclose()  # type: ignore[attr-defined]
    if work.cancelled():
        raise ClientGone()
    work.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def stream_response(
    first: StreamEvent | None,
    events: AsyncIterator[StreamEvent],
    render: Callable[[StreamEvent], bytes | None],
    render_error: Callable[[LlmhostError], bytes],
    *,
    media_type: str,
    prefix: bytes = b"",
) -> StreamingResponse:
    """Translate event by event; a client disconnect cancels this generator and so the upstream."""

    async def body() -> AsyncIterator[bytes]:
        try:
            head = prefix
            if first is not None:
                head += render(first) or b""
            if head:
                yield head
            async for event in events:
                out = render(event)
                if out:
                    yield out
        except LlmhostError as exc:
            yield render_error(exc)
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(body(), media_type=media_type, headers=STREAM_HEADERS)

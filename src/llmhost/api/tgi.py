"""TGI routes: thin glue between HTTP, the TGI translator and the service.

TGI requests name no model: they go to the catalog's default model. ``GET /`` (health) belongs to the Ollama router
and ``/health`` to the app.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llmhost import __version__
from llmhost.api.common import STREAM_HEADERS, collect, first_event, read_json, stream_response
from llmhost.models.catalog import ModelEntry
from llmhost.protocols import tgi
from llmhost.service import Service
from llmhost.types import LlmhostError, ModelNotFound

router = APIRouter()

SSE = "text/event-stream"


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _default_entry(service: Service) -> ModelEntry:
    entry = service.catalog.default_entry()
    if entry is None:
        raise ModelNotFound(service.settings.default_model or "default")
    return entry


def _json(content: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), media_type="application/json", headers=headers)


@router.post("/generate")
async def generate(request: Request) -> Response:
    return await _generate(request, await read_json(request), "generate")


@router.post("/generate_stream")
async def generate_stream(request: Request) -> Response:
    return await _stream(request, await read_json(request), "generate_stream")


@router.post("/")
async def compat_generate(request: Request) -> Response:
    """TGI's compat route (text-generation, huggingface_hub): a list when not streamed, else ``/generate_stream``."""
    body = await read_json(request)
    if isinstance(body, dict) and body.get("stream") is True:
        return await _stream(request, body, "compat")
    return await _generate(request, body, "compat")


async def _generate(request: Request, body: Any, route: tgi.Route) -> Response:
    started = time.perf_counter()
    service = _service(request)
    req, options = tgi.parse_generate(body, _default_entry(service).name, route)
    validated = time.perf_counter()
    events = service.stream_completion(req)
    first = await first_event(events)
    acc = tgi.Accumulator()
    if first is not None:
        acc.add(first)
    await collect(request, events, acc.add)
    headers = tgi.response_headers(acc, options, time.perf_counter() - started, validated - started)
    answer = tgi.render_generate(acc, options)
    return _json([answer] if route == "compat" else answer, headers)


async def _stream(request: Request, body: Any, route: tgi.Route) -> Response:
    """TGI answers 200 on its stream routes even for errors found before the first token: one SSE error event."""
    service = _service(request)
    try:
        req, options = tgi.parse_generate(body, _default_entry(service).name, route)
        events = service.stream_completion(req)
        first = await first_event(events)
    except LlmhostError as exc:
        return Response(tgi.error_event(exc), media_type=SSE, headers=STREAM_HEADERS)
    stream = tgi.GenerateStream(options)
    return stream_response(first, events, stream.event, stream.error, media_type=SSE)


@router.get("/info")
async def info(request: Request) -> Response:
    service = _service(request)
    entry = _default_entry(service)
    profile = service.profile(entry)
    facts = tgi.ModelFacts(
        name=entry.name,
        ctx=profile.ctx,
        parallel=profile.parallel,
        queue_size=service.settings.scheduler.queue_size,
        dtype=entry.meta.quantization if entry.meta is not None else None,
    )
    return _json(tgi.render_info(facts, __version__))

"""OpenAI routes: thin glue between HTTP, the OpenAI translator and the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llmhost.api.common import collect, first_event, read_json, stream_response
from llmhost.protocols import openai
from llmhost.service import Service
from llmhost.types import ModelNotFound, StreamEvent

router = APIRouter()


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _model_object(service: Service, name: str) -> dict[str, Any]:
    entry = service.catalog.get(name)
    profile = service.profile(entry)
    return openai.model_object(entry.name, entry.modified, f"llmhost:{entry.source}", profile.ctx)


async def _accumulate(
    request: Request, first: StreamEvent | None, events: AsyncIterator[StreamEvent]
) -> openai.Accumulator:
    """A non-streamed answer: every event collected, the engine request cancelled if the client leaves."""
    acc = openai.Accumulator()
    if first is not None:
        acc.add(first)
    await collect(request, events, acc.add)
    return acc


def _remote_objects(service: Service) -> dict[str, dict[str, Any]]:
    """Provider models not also served locally; ``owned_by`` names the provider."""
    local = {entry.name for entry in service.catalog.entries()}
    return {
        name: openai.model_object(name, 0, f"provider:{provider.name}", None)
        for name, provider in service.remote_models()
        if name not in local
    }


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    service = _service(request)
    data = [_model_object(service, entry.name) for entry in service.catalog.entries()]
    data += list(_remote_objects(service).values())
    return ORJSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(request: Request, model_id: str) -> Response:
    service = _service(request)
    try:
        entry = service.catalog.get(model_id)
    except ModelNotFound:
        remote = _remote_objects(service).get(model_id)
        if remote is None:
            raise
        return ORJSONResponse(remote)
    if entry.error:
        raise ModelNotFound(model_id)
    return ORJSONResponse(_model_object(service, entry.name))


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    req = openai.parse_chat(await read_json(request))
    service = _service(request)
    events = service.stream_chat(req)
    first = await first_event(events)
    if req.stream:
        stream = openai.ChatStream(req.model, req.include_usage)
        return stream_response(
            first, events, stream.event, stream.error, media_type="text/event-stream", prefix=stream.first()
        )
    return ORJSONResponse(openai.render_chat(req.model, await _accumulate(request, first, events)))


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    req = openai.parse_completion(await read_json(request))
    service = _service(request)
    events = service.stream_completion(req)
    first = await first_event(events)
    if req.stream:
        stream = openai.CompletionStream(req.model, req.include_usage)
        return stream_response(first, events, stream.event, stream.error, media_type="text/event-stream")
    return ORJSONResponse(openai.render_completion(req.model, await _accumulate(request, first, events)))


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    req, encoding = openai.parse_embeddings(await read_json(request))
    result = await _service(request).embed(req)
    return ORJSONResponse(openai.render_embeddings(req.model, result, encoding))

"""Ollama routes: thin glue between HTTP, the Ollama translator and the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse

from llmhost import __version__
from llmhost.api.common import STREAM_HEADERS, collect, first_event, read_json, stream_response
from llmhost.api.openai import ORJSONResponse
from llmhost.engines.memory import HOST
from llmhost.models.capabilities import capabilities
from llmhost.models.catalog import ModelEntry
from llmhost.models.gguf_header import read_header
from llmhost.models.names import validate_model_name
from llmhost.protocols import ollama
from llmhost.service import Service
from llmhost.types import ChatRequest, LlmhostError, ModelNotFound

router = APIRouter()
MIB = 1024 * 1024
NDJSON = "application/x-ndjson"


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.api_route("/", methods=["GET", "HEAD"])
async def root(request: Request) -> Response:
    """Ollama's liveness probe (also TGI's ``GET /``); a browser is sent to the dashboard."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui/", status_code=307)
    return PlainTextResponse("Ollama is running")


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> Response:
    return ORJSONResponse({"version": ollama.API_VERSION, "llmhost": __version__})


# Generation ------------------------------------------------------------------------------------


@router.post("/api/chat")
async def chat(request: Request) -> Response:
    req, generation = ollama.parse_chat(await read_json(request))
    return await _generate(request, req, generation, "chat")


@router.post("/api/generate")
async def generate(request: Request) -> Response:
    req, generation = ollama.parse_generate(await read_json(request))
    return await _generate(request, req, generation, "generate")


async def _generate(request: Request, req: Any, generation: ollama.Generation, kind: Any) -> Response:
    service = _service(request)
    started_unix, started = time.time(), time.monotonic()
    stream = ollama.OllamaStream(req.model, kind, started)
    if generation.load_only:
        unloaded = await service.load(req.model, generation.keep_alive)
        return _single(stream.load_answer("unload" if unloaded else "load"), generation.stream)
    events = service.stream_chat(req) if isinstance(req, ChatRequest) else service.stream_completion(req)
    first = await first_event(events)
    stream.load_seconds = service.load_seconds(req.model, started_unix)
    if generation.stream:
        return stream_response(first, events, stream.event, stream.error, media_type=NDJSON)
    if first is not None:
        stream.gathered.add(first)
    await collect(request, events, stream.gathered.add)
    return ORJSONResponse(stream.whole())


def _single(payload: dict[str, Any], streamed: bool) -> Response:
    """One object: as a one-line NDJSON stream when streaming was asked for, else as plain JSON."""
    if not streamed:
        return ORJSONResponse(payload)

    async def body() -> AsyncIterator[bytes]:
        yield ollama.ndjson(payload)

    return StreamingResponse(body(), media_type=NDJSON, headers=STREAM_HEADERS)


# Embeddings ------------------------------------------------------------------------------------


@router.post("/api/embed")
async def embed(request: Request) -> Response:
    req, dimensions = ollama.parse_embed(await read_json(request))
    service = _service(request)
    started_unix, started = time.time(), time.monotonic()
    if not req.inputs:
        await service.load(req.model, req.keep_alive)
        return ORJSONResponse({"model": req.model, "embeddings": []})
    result = await service.embed(req)
    body: dict[str, Any] = {
        "model": req.model,
        "embeddings": [ollama.normalise(vector, dimensions) for vector in result.vectors],
        "total_duration": round((time.monotonic() - started) * ollama.NS),
        "load_duration": round(service.load_seconds(req.model, started_unix) * ollama.NS),
        "prompt_eval_count": result.prompt_tokens,
    }
    return ORJSONResponse(body)


@router.post("/api/embeddings")
async def embeddings(request: Request) -> Response:
    req = ollama.parse_embeddings(await read_json(request))
    service = _service(request)
    if not req.inputs:
        await service.load(req.model, req.keep_alive)  # as Ollama: loads the model, and a wrong name is a 404
        return ORJSONResponse({"embedding": []})
    result = await service.embed(req)
    return ORJSONResponse({"embedding": result.vectors[0]})


# Models ----------------------------------------------------------------------------------------


def _details(entry: ModelEntry) -> dict[str, Any]:
    meta = entry.meta
    return ollama.details(
        meta.architecture if meta else None,
        ollama.parameter_size(meta.parameter_count if meta else None),
        meta.quantization if meta else None,
    )


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request) -> Response:
    """Every model, newest first; a name made by /api/copy is listed as a model of its own, as in Ollama."""
    service = _service(request)
    catalog = service.catalog
    copies = await asyncio.to_thread(catalog.copies.load)
    models = []
    for entry in sorted(catalog.entries(), key=lambda e: e.modified, reverse=True):
        if entry.error:
            continue
        item = _tag(entry, capabilities(entry, service.profile(entry)))
        models.append(item)
        models.extend({**item, "name": alias, "model": alias} for alias in entry.aliases if alias in copies)
    local = {m["name"] for m in models}
    models += [_remote_tag(name, provider.name) for name, provider in service.remote_models() if name not in local]
    return ORJSONResponse({"models": models})


def _remote_tag(name: str, provider: str) -> dict[str, Any]:
    """A provider's model: what it is made of is the upstream's business; ``details.parent_model`` names it."""
    details = ollama.details(None, None, None) | {"parent_model": f"provider:{provider}", "format": ""}
    return {
        "name": name,
        "model": name,
        "modified_at": ollama.rfc3339(0),
        "size": 0,
        "digest": "",
        "details": details,
        "provider": provider,
    }


def _tag(entry: ModelEntry, caps: list[str]) -> dict[str, Any]:
    details = _details(entry)
    if entry.meta:
        details["context_length"] = entry.meta.context_length
        details["embedding_length"] = entry.meta.embedding_length
    return {
        "name": entry.name,
        "model": entry.name,
        "modified_at": ollama.rfc3339(entry.modified),
        "size": entry.size,
        "digest": entry.tag_digest,
        "details": details,
        "capabilities": caps,
    }


@router.post("/api/show")
async def show(request: Request) -> Response:
    body = await read_json(request)
    service = _service(request)
    name = ollama.model_name(body)
    try:
        entry = service.catalog.get(name)
    except ModelNotFound:
        remote = dict(service.remote_models()).get(name)
        if remote is None:
            raise
        return ORJSONResponse({"model_info": {}, "details": _remote_tag(name, remote.name)["details"], "template": ""})
    if entry.error or entry.meta is None:
        raise ModelNotFound(entry.name)
    profile = service.profile(entry)
    header = await asyncio.to_thread(read_header, entry.path)
    params = dict(entry.params or {})
    answer: dict[str, Any] = {
        "license": entry.license or "",
        "modelfile": f"# Modelfile generated by llmhost\nFROM {entry.path}\n",
        "parameters": ollama.parameters_text(params),
        "template": entry.template or entry.meta.chat_template or "",
        "details": _details(entry),
        "model_info": ollama.model_info(header.fields, entry.meta.parameter_count, bool(body.get("verbose"))),
        "capabilities": capabilities(entry, profile),
        "modified_at": ollama.rfc3339(entry.modified),
    }
    if entry.system:
        answer["system"] = entry.system
    return ORJSONResponse(answer)


@router.get("/api/ps")
async def ps(request: Request) -> Response:
    scheduler = _service(request).scheduler
    models = []
    for slot in scheduler.models.values():
        if slot.engine is None:
            continue
        charges = scheduler.charges(slot)
        vram = sum(mib for device, mib in charges.items() if device != HOST)
        expires = None if slot.expires_at is None else time.time() + (slot.expires_at - time.monotonic())
        meta = slot.entry.meta
        models.append(
            ollama.ps_model(
                name=slot.name,
                digest=slot.entry.tag_digest,
                size=int(sum(charges.values()) * MIB),
                size_vram=int(vram * MIB),
                expires_at=expires,
                context_length=slot.profile.ctx,
                family=meta.architecture if meta else None,
                parameter_size=ollama.parameter_size(meta.parameter_count if meta else None),
                quantization=meta.quantization if meta else None,
            )
        )
    models.sort(key=lambda m: m["expires_at"], reverse=True)
    return ORJSONResponse({"models": models})


@router.post("/api/copy")
async def copy(request: Request) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ollama.InvalidRequest("The request body must be a JSON object.")
    source, destination = body.get("source"), body.get("destination")
    if not isinstance(source, str) or not isinstance(destination, str) or not source or not destination:
        raise ollama.InvalidRequest("source and destination are required")
    await asyncio.to_thread(_service(request).catalog.copy, source, destination)
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete(request: Request) -> Response:
    name = ollama.model_name(await read_json(request))
    await _service(request).delete_model(name)
    return Response(status_code=200)


@router.post("/api/pull")
async def pull(request: Request) -> Response:
    """Fetch a model from the registry; one already in the catalog is not fetched again."""
    body = await read_json(request)
    service = _service(request)
    name = validate_model_name(ollama.model_name(body))
    streamed = body.get("stream") is not False
    try:
        service.catalog.get(name)
        progress: AsyncIterator[dict[str, Any]] = _already_here()
    except ModelNotFound:
        progress = service.pull(name)
    if not streamed:
        items = [item async for item in progress]  # a few status objects, not a generation
        return ORJSONResponse(items[-1])

    async def body_lines() -> AsyncIterator[bytes]:
        try:
            async for item in progress:
                yield ollama.ndjson(item)
        except LlmhostError as exc:
            yield ollama.ndjson(ollama.error_body(exc))

    return StreamingResponse(body_lines(), media_type=NDJSON, headers=STREAM_HEADERS)


async def _already_here() -> AsyncIterator[dict[str, Any]]:
    yield {"status": "pulling manifest"}
    yield {"status": "success"}

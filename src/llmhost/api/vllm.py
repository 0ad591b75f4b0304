"""vLLM server extras: /version, /tokenize, /detokenize (``/health`` is shared with the app)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from llmhost import __version__
from llmhost.api.common import read_json
from llmhost.protocols import tgi, vllm
from llmhost.service import Service
from llmhost.types import ModelNotFound

router = APIRouter()


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": __version__}


@router.post("/tokenize")
async def tokenize(request: Request) -> Any:
    """vLLM's ``{model, prompt | messages}``, or TGI's ``{inputs}`` (no model: the default one)."""
    body = await read_json(request)
    service = _service(request)
    if isinstance(body, dict) and "inputs" in body and "model" not in body:
        default = service.catalog.default_entry()
        if default is None:
            raise ModelNotFound("default")
        req = tgi.parse_tokenize(body, default.name)
        return tgi.render_tokenize(req.prompt or "", await service.tokenize(req))
    return vllm.render_tokenize(await service.tokenize(vllm.parse_tokenize(body)))


@router.post("/detokenize")
async def detokenize(request: Request) -> dict[str, Any]:
    req = vllm.parse_detokenize(await read_json(request))
    return vllm.render_detokenize(await _service(request).detokenize(req))

"""vLLM server extras: /version, /tokenize, /detokenize (``/health`` is shared with the app)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from llmhost import __version__
from llmhost.api.common import read_json
from llmhost.protocols import vllm
from llmhost.service import Service

router = APIRouter()


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": __version__}


@router.post("/tokenize")
async def tokenize(request: Request) -> dict[str, Any]:
    req = vllm.parse_tokenize(await read_json(request))
    return vllm.render_tokenize(await _service(request).tokenize(req))


@router.post("/detokenize")
async def detokenize(request: Request) -> dict[str, Any]:
    req = vllm.parse_detokenize(await read_json(request))
    return vllm.render_detokenize(await _service(request).detokenize(req))

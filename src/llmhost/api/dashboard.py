"""The web dashboard: server-rendered pages under ``/ui`` that read the telemetry and admin APIs.

Pages are Jinja2 templates with a small script each; live figures arrive over ``/api/events`` (SSE, 1 Hz) and
mutations go through the admin API. Static files (with the vendored chart library) are served from
``/ui/static`` so the dashboard works air-gapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from llmhost import __version__
from llmhost.auth import Unauthorized, presented_key
from llmhost.models.catalog import ModelEntry
from llmhost.service import Service
from llmhost.telemetry.requests import RequestState
from llmhost.web.endpoint_stats import endpoint_stats

WEB = Path(__file__).resolve().parent.parent / "web"
templates = Jinja2Templates(directory=WEB / "templates")
static_files = StaticFiles(directory=WEB / "static")
router = APIRouter(prefix="/ui", include_in_schema=False)

DIALECTS = ("openai", "ollama", "vllm", "tgi", "llmhost")
# GPU colouring on the overview: [yellow from, red from] per figure; the page reads them from data attributes.
GPU_THRESHOLDS: dict[str, tuple[float, float]] = {
    "utilization_percent": (80.0, 95.0),
    "memory_percent": (85.0, 95.0),
    "temperature_c": (80.0, 90.0),
}


@dataclass(frozen=True)
class Page:
    slug: str  # the path under /ui/
    title: str
    template: str


PAGES = (
    Page("", "Overview", "overview.html"),
    Page("gpus", "GPUs", "gpus.html"),
    Page("models", "Models", "models.html"),
    Page("engines", "Engines", "engines.html"),
    Page("apis", "APIs", "apis.html"),
    Page("config", "Config", "config.html"),
    Page("optimize", "Optimization", "optimize.html"),
    Page("benchmarks", "Benchmarks", "benchmarks.html"),
    Page("tuning", "Tuning", "tuning.html"),
)
PAGE = {page.slug: page for page in PAGES}


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def render(request: Request, page: Page, **context: Any) -> Response:
    return templates.TemplateResponse(
        request,
        page.template,
        {"page": page, "pages": PAGES, "version": __version__, **context},
        headers={"cache-control": "no-store"},
    )


def catalog_row(service: Service, entry: ModelEntry) -> dict[str, Any]:
    """One model as the Models page lists it; unknown figures stay None (shown as a dash)."""
    profile = service.profile(entry)
    meta = entry.meta
    return {
        "name": entry.name,
        "aliases": list(entry.aliases),
        "source": entry.source,
        "path": str(entry.path),
        "size": entry.size,
        "quantization": meta.quantization if meta else None,
        "architecture": meta.architecture if meta else None,
        "parameters": meta.parameter_count if meta else None,
        "true_ctx": meta.context_length if meta else None,
        "ctx": profile.ctx,
        "parallel": profile.parallel,
        "error": entry.error,
    }


def model_names(service: Service) -> list[str]:
    return [entry.name for entry in service.catalog.entries()]


def effective_profiles(service: Service) -> dict[str, dict[str, Any]]:
    """Each model's parameters as the next start would use them: the engine form shows them as placeholders."""
    return {
        entry.name: service.profile(entry).model_dump(mode="json", exclude={"path"})
        for entry in service.catalog.entries()
    }


@router.get("/static/{path:path}")
async def static(request: Request, path: str) -> Response:
    return await static_files.get_response(path, request.scope)


@router.get("/api/endpoints")
async def endpoints(request: Request) -> dict[str, Any]:
    """Per dialect and route: responses by status code, error rate, latency percentiles (since start). Unlike the
    pages, this is data: with keys configured it needs one, although /ui is open to reading."""
    service = _service(request)
    if service.keys.enabled and service.keys.identify(presented_key(request.headers)) is None:
        raise Unauthorized("An API key is required to read traffic figures", code="invalid_api_key")
    return {"endpoints": endpoint_stats(service.monitor.http_metrics.collect())}


@router.get("/")
async def overview(request: Request) -> Response:
    return render(request, PAGE[""], thresholds=GPU_THRESHOLDS)


@router.get("/gpus")
async def gpus(request: Request) -> Response:
    return render(request, PAGE["gpus"], thresholds=GPU_THRESHOLDS)


@router.get("/models")
async def models(request: Request) -> Response:
    service = _service(request)
    rows = [catalog_row(service, entry) for entry in service.catalog.entries()]
    return render(request, PAGE["models"], catalog=rows)


@router.get("/engines")
async def engines(request: Request) -> Response:
    service = _service(request)
    cap = service.settings.scheduler.max_loaded
    return render(request, PAGE["engines"], models=model_names(service), profiles=effective_profiles(service), cap=cap)


@router.get("/apis")
async def apis(request: Request) -> Response:
    service = _service(request)
    states = [str(state) for state in RequestState]
    return render(request, PAGE["apis"], models=model_names(service), dialects=DIALECTS, states=states)


@router.get("/config")
async def config(request: Request) -> Response:
    service = _service(request)
    default = service.settings.default_model
    return render(request, PAGE["config"], models=model_names(service), default_model=default)


@router.get("/optimize")
async def optimize(request: Request) -> Response:
    return render(request, PAGE["optimize"])


@router.get("/benchmarks")
async def benchmarks(request: Request) -> Response:
    return render(request, PAGE["benchmarks"])


@router.get("/tuning")
async def tuning(request: Request) -> Response:
    return render(request, PAGE["tuning"])

"""The advisor's report as JSON, for the Optimization page, ``llmhost advise`` and scripts. Read-only, so keys
are checked like /api/metrics: any valid key once keys are configured, not only admin keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llmhost.advisor import gather, report
from llmhost.api.openai import ORJSONResponse
from llmhost.api.telemetry import _window_seconds
from llmhost.service import Service

router = APIRouter(include_in_schema=False)


@router.get("/api/advice")
async def advice(request: Request) -> Response:
    """``?model=`` limits the report to one model; ``?window=`` is how many seconds of telemetry count (3600)."""
    service: Service = request.app.state.service
    model = request.query_params.get("model") or None
    if model is not None:
        model = service.catalog.get(model).name  # an unknown name is a 404 naming it
    facts = await gather.from_service(service, model, _window_seconds(request, gather.WINDOW_S))
    return ORJSONResponse(report.build(facts).to_dict())

"""TGI (text-generation-inference) dialect: a pure translator, no I/O."""

from __future__ import annotations

from typing import Any

from llmhost.types import LlmhostError

# Routes that speak TGI; errors on them use TGI's body and statuses.
PATHS = frozenset({"/", "/generate", "/generate_stream", "/info"})

ERROR_TYPES = {
    "invalid_request": "validation",
    "too_large": "validation",
    "not_found": "validation",
    "overloaded": "overloaded",
    "unavailable": "overloaded",
    "timeout": "overloaded",
    "engine_error": "generation",
}


def error_status(error: LlmhostError) -> int:
    """TGI answers validation problems with 422 and generation failures with 424."""
    if error.kind in ("invalid_request", "not_found"):
        return 422
    if error.kind == "engine_error":
        return 424
    return error.status


def error_body(error: LlmhostError) -> dict[str, Any]:
    kind = ERROR_TYPES.get(error.kind, "generation")
    prefix = {"validation": "Input validation error: ", "generation": "Request failed during generation: "}
    return {"error": prefix.get(kind, "") + error.message, "error_type": kind}

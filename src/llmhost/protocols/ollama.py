"""Ollama dialect: a pure translator, no I/O. (So far: the loaded-models list of ``/api/ps``.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmhost.types import LlmhostError, ModelNotFound

FOREVER = "2318-11-23T00:00:00Z"  # Ollama shows keep_alive < 0 as an expiry far in the future


def rfc3339(unix: float | None) -> str:
    if unix is None:
        return FOREVER
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def ps_model(
    *,
    name: str,
    digest: str,
    size: int,
    size_vram: int,
    expires_at: float | None,
    context_length: int,
    family: str | None,
    parameter_size: str | None,
    quantization: str | None,
) -> dict[str, Any]:
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": family or "",
        "families": [family] if family else [],
        "parameter_size": parameter_size or "",
        "quantization_level": quantization or "",
    }
    return {
        "name": name,
        "model": name,
        "size": size,
        "digest": digest,
        "details": details,
        "expires_at": rfc3339(expires_at),
        "size_vram": size_vram,
        "context_length": context_length,
    }


def parameter_size(count: int | None) -> str | None:
    if not count:
        return None
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}".replace(".0", "")
    return str(count)


def error_body(error: LlmhostError) -> dict[str, Any]:
    """Ollama errors are a bare string; a missing model reads as Ollama words it."""
    if isinstance(error, ModelNotFound):
        return {"error": f"model '{error.model}' not found"}
    return {"error": error.message}

"""What models an upstream serves, per kind: pure parsers of its listing routes."""

from __future__ import annotations

from typing import Any

from llmhost.config import ProviderKind

LISTING_PATHS: dict[ProviderKind, str] = {
    "openai": "/v1/models",
    "vllm": "/v1/models",
    "llamacpp": "/v1/models",
    "ollama": "/api/tags",
    "tgi": "/info",
}


class DiscoveryError(ValueError):
    """The upstream answered, but not with a model list of its kind."""


def listing_path(kind: ProviderKind) -> str:
    return LISTING_PATHS[kind]


def parse_listing(kind: ProviderKind, body: Any) -> list[str]:
    """Model ids in the upstream's own names, in its order, without duplicates."""
    if kind == "ollama":
        ids = [item.get("model") or item.get("name") for item in _items(body, "models")]
    elif kind == "tgi":
        if not isinstance(body, dict) or not isinstance(body.get("model_id"), str):
            raise DiscoveryError("/info has no model_id")
        ids = [body["model_id"]]
    else:
        ids = [item.get("id") for item in _items(body, "data")]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise DiscoveryError(f"the listing has no {key!r} list")
    return [item for item in items if isinstance(item, dict)]

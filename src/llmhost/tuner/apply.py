"""Applying a tuning result: the best profile merged into ``models[<model>]`` of the configuration document, then
applied through live configuration (validated whole, recorded in the history, reversible by rollback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from llmhost.types import InvalidRequest


def profile_key(models: dict[str, Any], name: str, aliases: Sequence[str]) -> str | None:
    """The key of ``models`` that configures the model (as the catalog matches it), or None."""
    if name in models:
        return name
    for key, profile in models.items():
        listed = profile.get("aliases", []) if isinstance(profile, dict) else []
        if name in listed or key in aliases:
            return key
    return None


def merged_document(document: str, name: str, aliases: Sequence[str], profile: dict[str, Any]) -> str:
    """``document`` with ``profile`` merged into the model's entry; a model configured by ``defaults`` until now
    gets an entry that starts from them, so that nothing else about it changes."""
    data = yaml.safe_load(document) if document.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("the configuration is not a mapping of keys")
    models = data.get("models") or {}
    data["models"] = models
    key = profile_key(models, name, aliases)
    if key is None:
        key = name
        models[key] = dict(data.get("defaults") or {})
    models[key] = {**(models[key] or {}), **profile}
    return yaml.safe_dump(data, sort_keys=False)

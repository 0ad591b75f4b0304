"""Applying a tuning result: the best profile merged into ``models[<model>]`` of the configuration document, then
applied through live configuration (validated whole, recorded in the history, reversible by rollback)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from llmhost.auth import load_key_file
from llmhost.config import Settings
from llmhost.types import InvalidRequest, LlmhostError


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


# from the command line: through the running service's admin API, else through live configuration offline -----


@dataclass(frozen=True, slots=True)
class Applied:
    change_id: int
    result: str
    via: str  # the service URL, or the config file written
    error: str | None = None
    rollback_hint: str = ""


class ApplyError(Exception):
    pass


def service_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def admin_key(settings: Settings) -> str | None:
    """$LLMHOST_API_KEY, else the first admin key of the configuration whose secret is in the environment."""
    if os.environ.get("LLMHOST_API_KEY"):
        return os.environ["LLMHOST_API_KEY"]
    for key in [*settings.auth.keys, *load_key_file(settings.auth.key_file)]:
        if key.admin and key.key_env and os.environ.get(key.key_env):
            return os.environ[key.key_env]
    return None


def service_answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def apply_via_service(
    base: str, key: str | None, name: str, aliases: Sequence[str], profile: dict[str, Any]
) -> Applied:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        current = _checked(client.get("/admin/config"))["yaml"]
        document = merged_document(current, name, aliases, profile)
        change = _checked(client.post("/admin/config/apply", json={"yaml": document}))
    hint = f"curl -X POST {base}/admin/config/rollback/{change['id']}" + (
        ' -H "authorization: Bearer $KEY"' if key else ""
    )
    return Applied(
        change["id"], change["result"], base, change.get("error"), f"llmhost tune rollback {change['id']}  (or {hint})"
    )


def _checked(response: httpx.Response) -> Any:
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ApplyError(f"{response.request.url.path}: HTTP {response.status_code}: {message}")
    return body


async def apply_offline(
    settings: Settings, path: Path, name: str, aliases: Sequence[str], profile: dict[str, Any]
) -> Applied:
    """Validate, write ``path`` and record the change in the history, as the service would (a service started
    later finds it, and can roll it back)."""
    from llmhost.live_config import LiveConfig
    from llmhost.service import Service

    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n", encoding="utf-8")
    live = LiveConfig(Service(settings), path, {})
    try:
        change = await live.apply(
            merged_document(live.document(), name, aliases, profile), who="llmhost tune", source="cli"
        )
    except LlmhostError as exc:
        if created:
            path.unlink(missing_ok=True)
        raise ApplyError(exc.message) from None
    return Applied(change.id, change.result, str(path), change.error, f"llmhost tune rollback {change.id}")


def rollback_via_service(base: str, key: str | None, change_id: int) -> Applied:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        change = _checked(client.post(f"/admin/config/rollback/{change_id}"))
    return Applied(change["id"], change["result"], base, change.get("error"))


async def rollback_offline(settings: Settings, path: Path, change_id: int) -> Applied:
    from llmhost.live_config import LiveConfig
    from llmhost.service import Service

    live = LiveConfig(Service(settings), path, {})
    try:
        change = await live.rollback(change_id, who="llmhost tune")
    except LlmhostError as exc:
        raise ApplyError(exc.message) from None
    return Applied(change.id, change.result, str(path), change.error)

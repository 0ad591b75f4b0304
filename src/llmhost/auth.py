"""API keys and per-key limits: who may call, which models, how often, how much, how many at once.

Keys are never stored: the config and the key file hold ``sha256:<hex>`` digests (``llmhost keys add`` makes
one). A request presents its key the way its client sends it: ``Authorization: Bearer`` (openai, ollama with
OLLAMA_API_KEY, huggingface_hub, text-generation) or ``x-api-key``. With no key configured, everything is open
(and ``serve`` refuses to bind beyond loopback without ``--insecure``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from llmhost.config import AuthSettings, KeySettings
from llmhost.types import Overloaded, PermissionDenied, Unauthorized

WINDOW = 60.0  # seconds behind "per minute"
OPEN_PATHS = frozenset({"/", "/health", "/version"})  # liveness probes stay open (GET and HEAD only)
OPEN_PREFIXES = ("/ui",)  # the dashboard's pages hold no data; what they fetch and post needs the key
ADMIN_PREFIXES = ("/admin/",)
ADMIN_PATHS = frozenset({"/api/copy", "/api/delete", "/api/pull"})  # they change what the service holds


def new_key() -> str:
    return "llmh-" + secrets.token_urlsafe(24)


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """Bearer or x-api-key; ``?key=`` too, for the browser's EventSource, which cannot send headers."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or (query or {}).get("key") or None


@dataclass
class Usage:
    """One key's recent use: request and token timestamps in the last minute, and requests in flight."""

    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    in_flight: int = 0

    def prune(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - WINDOW:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW:
            self.tokens.popleft()

    def tokens_used(self) -> int:
        return sum(count for _, count in self.tokens)


class KeyRing:
    def __init__(self, settings: AuthSettings) -> None:
        self.usage: dict[str, Usage] = {}
        self.reload(settings)

    def reload(self, settings: AuthSettings) -> None:
        """Take new keys (live configuration); the usage of keys that stay is kept."""
        self.settings = settings
        self.keys: dict[str, KeySettings] = {}  # digest -> key
        for key in [*settings.keys, *load_key_file(settings.key_file)]:
            self.keys[key.digest()] = key

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def by_name(self, name: str) -> KeySettings | None:
        return next((key for key in self.keys.values() if key.name == name), None)

    def identify(self, presented: str | None) -> KeySettings | None:
        """The key presented, compared by digest in constant time; None when it matches none."""
        if presented is None:
            return None
        wanted = digest(presented)
        for known, key in self.keys.items():
            if hmac.compare_digest(known, wanted):
                return key
        return None

    def authorize(self, method: str, path: str, presented: str | None) -> KeySettings | None:
        """Who is calling; raises Unauthorized (no or a wrong key) or Forbidden (not an admin key)."""
        reading = method in ("GET", "HEAD")
        if not self.enabled or (reading and (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))):
            return None
        if path == "/metrics" and self.settings.public_metrics:
            return None
        key = self.identify(presented)
        if key is None:
            raise Unauthorized(
                "Incorrect API key provided" if presented else "An API key is required", code="invalid_api_key"
            )
        if (path.startswith(ADMIN_PREFIXES) or path in ADMIN_PATHS) and not key.admin:
            raise PermissionDenied(f"the key {key.name!r} is not an admin key", code="admin_required")
        return key

    def admit(self, key: KeySettings, now: float | None = None) -> None:
        """Count a request against the key's limits; raises Overloaded (429) with Retry-After when over."""
        now = time.monotonic() if now is None else now
        usage = self.usage.setdefault(key.name, Usage())
        usage.prune(now)
        if key.max_parallel is not None and usage.in_flight >= key.max_parallel:
            raise Overloaded(
                f"{key.name}: {key.max_parallel} requests already in flight", code="key_parallel", retry_after=1
            )
        if key.rpm is not None and len(usage.requests) >= key.rpm:
            wait = usage.requests[0] + WINDOW - now
            raise Overloaded(f"{key.name}: over {key.rpm} requests per minute", code="key_rpm", retry_after=wait)
        if key.tpm is not None and usage.tokens_used() >= key.tpm:
            wait = usage.tokens[0][0] + WINDOW - now
            raise Overloaded(f"{key.name}: over {key.tpm} tokens per minute", code="key_tpm", retry_after=wait)
        usage.requests.append(now)
        usage.in_flight += 1

    def release(self, key: KeySettings) -> None:
        self.usage[key.name].in_flight -= 1

    def charge_tokens(self, name: str, tokens: int, now: float | None = None) -> None:
        usage = self.usage.setdefault(name, Usage())
        usage.tokens.append((time.monotonic() if now is None else now, tokens))

    def check_model(self, key: KeySettings | None, model: str) -> None:
        if key is not None and key.models and not any(fnmatch.fnmatchcase(model, p) for p in key.models):
            raise PermissionDenied(
                f"the key {key.name!r} may not use the model {model!r}", param="model", code="model_forbidden"
            )


def load_key_file(path: Path | None) -> list[KeySettings]:
    """Keys kept in a YAML file: a list of entries shaped like ``auth.keys``."""
    if path is None or not path.expanduser().exists():
        return []
    data = yaml.safe_load(path.expanduser().read_text(encoding="utf-8")) or []
    try:
        return [KeySettings.model_validate(item) for item in _entries(data)]
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc.errors()[0]['msg']}") from exc


def _entries(data: object) -> Iterable[object]:
    if isinstance(data, dict):
        data = data.get("keys", [])
    if not isinstance(data, list):
        raise ValueError("a key file holds a list of keys")
    return data

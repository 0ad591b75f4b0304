"""One remote upstream: its client, the models it serves (under our names), and its health.

Health is a small state machine: ``unknown`` until the first probe, then ``healthy`` or ``unhealthy``.
An unhealthy upstream leaves the rotation and is probed again with exponential backoff; a request that
cannot reach it marks it unhealthy at once (passive health).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import httpx
import structlog

from llmhost.config import ProviderSettings
from llmhost.providers.discovery import DiscoveryError, listing_path, parse_listing
from llmhost.upstream import UpstreamClient

log = structlog.get_logger(__name__)

Health = Literal["unknown", "healthy", "unhealthy"]
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)


@dataclass
class ProviderStatus:
    state: Health = "unknown"
    latency_ms: float | None = None
    last_error: str | None = None
    last_probe: float | None = None  # unix time
    failures: int = 0  # in a row
    next_probe: float = 0.0  # monotonic
    models: list[str] = field(default_factory=list)  # upstream ids


class Provider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.status = ProviderStatus()
        self.outstanding = 0
        key = settings.key()
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.client = UpstreamClient(
            settings.base_url,
            request_timeout=settings.request_timeout,
            connect_timeout=settings.connect_timeout,
            max_connections=settings.max_connections,
            headers=headers,
        )
        if settings.models is not None:
            self.status.models = list(settings.models)

    async def aclose(self) -> None:
        await self.client.aclose()

    # names ------------------------------------------------------------------------------------------

    def served_name(self, upstream_id: str) -> str:
        return self.settings.aliases.get(upstream_id) or self.settings.prefix + upstream_id

    def served_models(self) -> dict[str, str]:
        """Our name -> the upstream's id, for every model it serves."""
        return {self.served_name(upstream_id): upstream_id for upstream_id in self.status.models}

    @property
    def available(self) -> bool:
        return self.status.state != "unhealthy"

    # health -----------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """List the upstream's models: a health check and discovery in one request."""
        started = time.perf_counter()
        self.status.last_probe = time.time()
        try:
            body = await self.client.get_json(listing_path(self.settings.kind), timeout=self.settings.connect_timeout)
            models = parse_listing(self.settings.kind, body)
        except (httpx.HTTPError, DiscoveryError, ValueError) as exc:
            self.mark_failed(_describe(exc))
            return
        self.status.latency_ms = (time.perf_counter() - started) * 1000
        if self.settings.models is None:
            self.status.models = models
        self._healthy()

    def mark_failed(self, reason: str) -> None:
        status = self.status
        if status.state != "unhealthy":
            log.warning("provider unhealthy", provider=self.name, error=reason)
        status.state, status.last_error = "unhealthy", reason
        status.failures += 1
        status.next_probe = time.monotonic() + BACKOFF[min(status.failures, len(BACKOFF)) - 1]

    def _healthy(self) -> None:
        status = self.status
        if status.state == "unhealthy":
            log.info("provider healthy again", provider=self.name)
        status.state, status.failures = "healthy", 0
        status.next_probe = time.monotonic() + self.settings.health_interval

    def view(self) -> dict[str, object]:
        status = self.status
        return {
            "name": self.name,
            "kind": self.settings.kind,
            "base_url": self.settings.base_url,
            "state": status.state,
            "latency_ms": status.latency_ms,
            "last_error": status.last_error,
            "last_probe": status.last_probe,
            "failures": status.failures,
            "outstanding": self.outstanding,
            "weight": self.settings.weight,
            "priority": self.settings.priority,
            "models": sorted(self.served_models()),
        }


def _describe(exc: Exception) -> str:
    """Why a probe failed, without the request's headers (the API key)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url.path}"
    return f"{type(exc).__name__}: {exc}"

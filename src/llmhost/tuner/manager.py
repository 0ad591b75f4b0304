"""Tuning jobs run inside the service: a registry of jobs, resumed at start and stopped at shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmhost.live_config import LiveConfig
    from llmhost.service import Service


class TuningManager:
    def __init__(self, service: Service, live: LiveConfig) -> None:
        self.service = service
        self.live = live

    async def start(self) -> None:
        """Resume the jobs a previous run of the service left unfinished."""

    async def stop(self) -> None:
        """Interrupt running jobs so that the next start resumes them."""

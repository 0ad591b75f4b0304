"""The web dashboard: server-rendered pages under ``/ui`` that read the telemetry and admin APIs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui")

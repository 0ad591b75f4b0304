"""Admin routes for benchmark runs and tuning jobs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", include_in_schema=False)

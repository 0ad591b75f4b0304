"""The advisor's report as JSON, for the Optimization page and scripts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

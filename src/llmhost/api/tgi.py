"""TGI routes: thin glue between HTTP, the TGI translator and the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

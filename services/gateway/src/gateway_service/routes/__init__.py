"""Product API routers; ``main.py`` mounts every one of ``API_ROUTERS`` under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from gateway_service.routes import diagnostics, support

API_ROUTERS: list[APIRouter] = [
    support.router,
    diagnostics.router,
]

# Routes a worker or a manager may call: their response models must carry no share or price.
__all__ = ["API_ROUTERS"]

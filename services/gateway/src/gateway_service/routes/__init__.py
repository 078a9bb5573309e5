"""Product API routers; ``main.py`` mounts every one of ``API_ROUTERS`` under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from gateway_service.routes import dashboards, diagnostics, ledger, review, rules, support, tasks

# busiest first: routing tries them in this order
API_ROUTERS: list[APIRouter] = [
    review.router,
    tasks.router,
    ledger.router,
    rules.router,
    support.router,
    dashboards.router,
    diagnostics.router,
]

__all__ = ["API_ROUTERS"]

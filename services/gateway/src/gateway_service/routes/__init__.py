"""Product API routers; ``main.py`` mounts every one of ``API_ROUTERS`` under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from gateway_service.routes import (
                                    assistant,
                                    budgets,
                                    changes,
                                    chat,
                                    control,
                                    dashboards,
                                    dead_letters,
                                    diagnostics,
                                    fair_pay,
                                    leads,
                                    ledger,
                                    legal,
                                    live,
                                    my_data,
                                    results,
                                    review,
                                    rules,
                                    sandbox,
                                    support,
                                    tasks,
                                    webhooks,
                                    worker_views,
)

# busiest first: routing tries them in this order
API_ROUTERS: list[APIRouter] = [
    review.router,
    tasks.router,
    results.router,
    ledger.router,
    rules.router,
    support.router,
    chat.router,
    dashboards.router,
    diagnostics.router,
    dead_letters.router,
    worker_views.router,
    control.router,
    assistant.router,
    leads.router,
    legal.router,
    changes.router,
    live.router,
    my_data.router,
    budgets.router,
    webhooks.router,
    fair_pay.router,
    sandbox.router,
]

__all__ = ["API_ROUTERS"]

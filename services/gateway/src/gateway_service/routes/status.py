"""Public status: whether the platform is up and read-only, and what the web UI may show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway_service.deps import Address, EmergencySwitch, Security
from gateway_service.routes.auth import quick_login_answers

router = APIRouter(tags=["status"])


@router.get("/status")
async def status(request: Request, emergency: EmergencySwitch, security: Security,
                 address: Address) -> dict[str, Any]:
    """``quick_login`` says whether the developer quick-login answers this caller
    (development with it switched on, from this machine)."""
    return {"status": "ok", "read_only": emergency.enabled,
            "read_only_reason": emergency.state.get("reason", "") if emergency.enabled else "",
            "version": security.settings.version,
            "quick_login": quick_login_answers(request, security.settings, address)}

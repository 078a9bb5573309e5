"""Public platform status (no login): is it up, is it read-only, which version."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["status"])


@router.get("/status")
async def status(request: Request) -> dict:
    emergency = request.app.state.emergency
    return {"status": "ok", "read_only": emergency.enabled,
            "version": request.app.state.settings.version}

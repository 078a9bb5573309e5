"""Admin: emergency read-only mode and the security audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from contracts.events import EmergencyChanged
from contracts.rpc import MAX_OFFSET
from gateway_service.deps import AdminActor, MfaAdmin
from gateway_service.routes.auth import peer

router = APIRouter(tags=["admin: security"])


class EmergencyBody(BaseModel):
    enabled: bool
    reason: str = Field(min_length=3, max_length=500)


class EmergencyOut(BaseModel):
    enabled: bool
    reason: str = ""
    by_user_id: str | None = None
    changed_at: datetime | None = None


class AuditItem(BaseModel):
    id: int
    at: datetime
    kind: str
    actor_user_id: str | None
    target: str | None
    address: str | None
    details: dict[str, Any]


class AuditOut(BaseModel):
    items: list[AuditItem]
    total: int


@router.get("/admin/emergency", response_model=EmergencyOut)
async def get_emergency(_: AdminActor, request: Request) -> dict:
    return request.app.state.emergency.state


@router.post("/admin/emergency", response_model=EmergencyOut)
async def set_emergency(body: EmergencyBody, admin: MfaAdmin, request: Request) -> dict:
    """Switch emergency read-only mode (MFA-elevated admin; shared by every replica)."""
    gw = request.app.state.gateway
    state = await request.app.state.emergency.set(enabled=body.enabled, reason=body.reason,
                                                  by_user_id=admin.user_id)
    async with gw.svc.transaction() as conn:
        await gw.audit.record("emergency.changed", admin.user_id, "emergency",
                              {"enabled": body.enabled, "reason": body.reason}, conn=conn,
                              address=peer(request))
        await gw.svc.record(conn, EmergencyChanged(enabled=body.enabled, reason=body.reason,
                                                   by_user_id=admin.user_id))
    return state


@router.get("/admin/audit", response_model=AuditOut)
async def read_audit(_: AdminActor, request: Request,
                     kind: str | None = Query(None, max_length=64),
                     user_id: str | None = Query(None, max_length=64),
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
    """Security events, newest first; ``user_id`` matches who acted or whom it concerned."""
    items, total = await request.app.state.audit.search(kind=kind, user_id=user_id,
                                                        since=since, until=until, limit=limit,
                                                        offset=offset)
    return {"items": items, "total": total}

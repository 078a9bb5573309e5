"""Admin: emergency read-only mode and the security audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from contracts.rpc import MAX_OFFSET, Instant
from gateway_service.deps import Address, AdminActor, EmergencySwitch, MfaAdmin, Security

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
async def get_emergency(_: AdminActor, emergency: EmergencySwitch) -> dict[str, Any]:
    return emergency.state


@router.post("/admin/emergency", response_model=EmergencyOut)
async def set_emergency(body: EmergencyBody, admin: MfaAdmin, emergency: EmergencySwitch,
                        security: Security, address: Address) -> dict[str, Any]:
    """Switch emergency read-only mode (MFA-elevated admin; shared by every replica)."""
    return await emergency.switch(security, enabled=body.enabled, reason=body.reason,
                                  by_user_id=admin.user_id, address=address)


@router.get("/admin/audit", response_model=AuditOut)
async def read_audit(_: AdminActor, security: Security,
                     kind: str | None = Query(None, max_length=64),
                     user_id: str | None = Query(None, max_length=64),
                     since: Instant | None = None, until: Instant | None = None,
                     limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> AuditOut:
    """Security events, newest first; ``user_id`` matches who acted or whom it concerned."""
    items, total = await security.audit.search(kind=kind, user_id=user_id, since=since,
                                               until=until, limit=limit, offset=offset)
    return AuditOut(items=[AuditItem.model_validate(i) for i in items], total=total)

"""Admin: accounts, workers' trust levels and personal login links."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from contracts.rpc import MAX_OFFSET, Actor, ErrorBody
from gateway_service.deps import AdminActor, Rpc, Session
from gateway_service.errors import ApiError
from gateway_service.routes.auth import auth_of, peer
from servicekit.errors import RpcCallError

log = logging.getLogger("gateway.admin_users")

router = APIRouter(tags=["admin: users"])


class UserCreateBody(BaseModel):
    login: str = Field(min_length=3, max_length=64)
    role: Literal["worker", "manager", "admin"]
    password: str | None = Field(None, max_length=1024,
                                 description="omit to get a random temporary password")


class UserCreatedOut(BaseModel):
    user_id: str
    login: str
    role: str
    temporary_password: str = Field(description="to hand over; it must be changed at first login")


class UserOut(BaseModel):
    user_id: str
    login: str
    role: str
    must_change_password: bool
    mfa_enabled: bool
    disabled: bool
    created_at: datetime


class UserDisabledOut(BaseModel):
    user_id: str
    login: str
    disabled: bool
    sessions_revoked: int


class UsersOut(BaseModel):
    items: list[UserOut]
    total: int


class TrustLevelBody(BaseModel):
    level: Literal["new", "verified", "trusted"]


class LoginLinkOut(BaseModel):
    url: str
    expires_at: datetime


@router.post("/admin/users", status_code=201, response_model=UserCreatedOut)
async def create_user(body: UserCreateBody, _: AdminActor, session: Session,
                      request: Request) -> dict:
    """Create an account with a temporary password (given, or generated and returned once)."""
    return await auth_of(request).create_user(login=body.login, role=body.role,
                                              password=body.password, created_by=session.user_id,
                                              address=peer(request))


@router.post("/admin/users/{user_id}/disable", response_model=UserDisabledOut,
             summary="Disable an account: no login, every session ends at once (audited)")
async def disable_user(user_id: Annotated[str, Path(min_length=1, max_length=64)],
                       _: AdminActor, session: Session, request: Request) -> dict:
    return await auth_of(request).set_disabled(session, user_id, True, peer(request))


@router.post("/admin/users/{user_id}/enable", response_model=UserDisabledOut,
             summary="Enable a disabled account again (audited)")
async def enable_user(user_id: Annotated[str, Path(min_length=1, max_length=64)],
                      _: AdminActor, session: Session, request: Request) -> dict:
    return await auth_of(request).set_disabled(session, user_id, False, peer(request))


@router.get("/admin/users", response_model=UsersOut)
async def list_users(_: AdminActor, request: Request,
                     limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
    return await auth_of(request).list_users(limit, offset)


def _set_trust_level_spec() -> Any:
    try:
        from contracts.rpc import tasks as tasks_rpc

        return tasks_rpc.SET_TRUST_LEVEL, tasks_rpc.SetTrustLevel
    except (ImportError, AttributeError):
        return None


@router.post("/admin/users/{user_id}/trust-level")
async def set_trust_level(user_id: str, body: TrustLevelBody, actor: AdminActor,
                          request: Request, rpc: Rpc) -> Any:
    """Set a worker's trust level in the tasks service (which owns it) and audit the change."""
    auth = auth_of(request)
    user = await auth.get_user(user_id)
    if user.role != "worker":
        raise ApiError(422, "not_a_worker", "trust levels apply to workers only")
    spec = _set_trust_level_spec()
    if spec is None:
        raise RpcCallError(ErrorBody(code="service_unavailable", status=503,
                                     message="the tasks service offers no set_trust_level yet"))
    rpc_spec, model = spec
    result = await rpc.call(rpc_spec, model(actor=Actor(user_id=actor.user_id, role="admin"),
                                            worker_id=user_id, trust_level=body.level))
    await auth.audit.record("trust_level.changed", actor.user_id, user_id,
                            {"level": body.level}, address=peer(request))
    return result


@router.post("/admin/users/{user_id}/login-link", response_model=LoginLinkOut)
async def create_login_link(user_id: str, _: AdminActor, session: Session,
                            request: Request) -> dict:
    """A single-use link that logs the user in (token in the URL fragment; default 24 h)."""
    return await auth_of(request).create_login_link(session, user_id, peer(request))

"""Admin: accounts, workers' trust levels and personal login links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from contracts.rpc import MAX_OFFSET, Role
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security, Session
from gateway_service.errors import ApiError
from gateway_service.security.accounts import CreatedUser, DisabledChange, UsersPage
from gateway_service.security.login_links import LoginLink

router = APIRouter(tags=["admin: users"])

UserId = Annotated[str, Path(min_length=1, max_length=64)]


class UserCreateBody(BaseModel):
    login: str = Field(min_length=3, max_length=64)
    role: Role
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
    level: tasks_rpc.TrustLevel


class LoginLinkOut(BaseModel):
    url: str
    expires_at: datetime


@router.post("/admin/users", status_code=201, response_model=UserCreatedOut)
async def create_user(body: UserCreateBody, _: AdminActor, session: Session, security: Security,
                      address: Address) -> CreatedUser:
    """Create an account with a temporary password (given, or generated and returned once)."""
    return await security.accounts.create_user(login=body.login, role=body.role,
                                               password=body.password,
                                               created_by=session.user_id, address=address)


@router.post("/admin/users/{user_id}/disable", response_model=UserDisabledOut,
             summary="Disable an account: no login, every session ends at once (audited)")
async def disable_user(user_id: UserId, _: AdminActor, session: Session, security: Security,
                       address: Address) -> DisabledChange:
    return await security.accounts.set_disabled(session, user_id, True, address)


@router.post("/admin/users/{user_id}/enable", response_model=UserDisabledOut,
             summary="Enable a disabled account again (audited)")
async def enable_user(user_id: UserId, _: AdminActor, session: Session, security: Security,
                      address: Address) -> DisabledChange:
    return await security.accounts.set_disabled(session, user_id, False, address)


@router.get("/admin/users", response_model=UsersOut)
async def list_users(_: AdminActor, security: Security,
                     limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> UsersPage:
    return await security.accounts.list_users(limit, offset)


@router.post("/admin/users/{user_id}/trust-level")
async def set_trust_level(user_id: UserId, body: TrustLevelBody, actor: AdminActor,
                          security: Security, rpc: Rpc, address: Address) -> Any:
    """Set a worker's trust level in the tasks service (which owns it) and audit the change."""
    user = await security.accounts.get_user(user_id)
    if user.role != "worker":
        raise ApiError(422, "not_a_worker", "trust levels apply to workers only")
    profile = await rpc.call(tasks_rpc.SET_TRUST_LEVEL, tasks_rpc.SetTrustLevel(
        actor=actor, worker_id=user_id, trust_level=body.level))
    await security.audit.record("trust_level.changed", actor.user_id, user_id,
                                {"level": body.level}, address=address)
    return profile


@router.post("/admin/users/{user_id}/login-link", response_model=LoginLinkOut)
async def create_login_link(user_id: UserId, _: AdminActor, session: Session, security: Security,
                            address: Address) -> LoginLink:
    """A single-use link that logs the user in (token in the URL fragment; default 24 h)."""
    return await security.login_links.create(session, user_id, address)

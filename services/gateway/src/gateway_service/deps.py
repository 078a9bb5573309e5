"""Request dependencies every router uses.

Routers depend only on this module's names:

    @router.post("/tasks/take")
    async def take(actor: WorkerActor, body: TakeBody, rpc: Rpc): ...
        return await rpc.call(tasks_rpc.TAKE, tasks_rpc.Take(actor=actor, ...))

``current_session`` is implemented by the security layer (sessions, forced
password change, MFA elevation); routers never look at tokens themselves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from contracts.rpc import Actor
from gateway_service.errors import ApiError
from servicekit.rpc import RpcClient


class SessionInfo:
    """The authenticated session behind a request."""

    def __init__(self, *, session_id: str, user_id: str, role: str, login: str,
                 mfa_elevated: bool, must_change_password: bool) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.role = role
        self.login = login
        self.mfa_elevated = mfa_elevated
        self.must_change_password = must_change_password

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role)  # type: ignore[arg-type]


async def current_session(request: Request) -> SessionInfo:
    """Resolve the bearer session; 401 if none, 403 password_change_required if pending."""
    auth = request.app.state.auth
    return await auth.session_from_request(request)


Session = Annotated[SessionInfo, Depends(current_session)]


def require_role(*roles: str):
    async def dep(session: Session) -> Actor:
        if session.role not in roles:
            raise ApiError(403, "forbidden", f"this needs the role {' or '.join(roles)}")
        return session.actor

    return dep


AnyActor = Annotated[Actor, Depends(require_role("worker", "manager", "admin"))]
WorkerActor = Annotated[Actor, Depends(require_role("worker"))]
StaffActor = Annotated[Actor, Depends(require_role("manager", "admin"))]
AdminActor = Annotated[Actor, Depends(require_role("admin"))]


async def mfa_elevated_admin(session: Session) -> SessionInfo:
    if session.role != "admin":
        raise ApiError(403, "forbidden", "this needs the role admin")
    if not session.mfa_elevated:
        raise ApiError(403, "mfa_required", "confirm with a TOTP code first (POST /api/auth/mfa/step-up)")
    return session


MfaAdmin = Annotated[SessionInfo, Depends(mfa_elevated_admin)]


async def rpc_client(request: Request) -> RpcClient:
    return request.app.state.rpc


Rpc = Annotated[RpcClient, Depends(rpc_client)]

"""Request dependencies every router uses.

Routers depend only on this module's names:

    @router.post("/worker/tasks/take")
    async def take(actor: WorkerActor, body: TakeBody, rpc: Rpc): ...
        return await rpc.call(tasks_rpc.TAKE, request_of(body, tasks_rpc.Take, actor=actor))

``Security`` is the gateway's security layer (sessions, throttles, accounts, MFA, login
links, audit); routers never look at tokens themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from contracts.rpc import Actor
from gateway_service.emergency import Emergency
from gateway_service.errors import ApiError
from gateway_service.security import SecurityLayer
from gateway_service.security.sessions import SessionInfo
from servicekit.rpc import RpcClient

__all__ = ["AdminActor", "Address", "AnyActor", "EmergencySwitch", "MfaAdmin", "Rpc", "Security",
           "Session", "SessionInfo", "StaffActor", "WorkerActor"]


# Dependencies are ``async def`` even where they only read: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread handoff on every request (9 % of the gateway's
# CPU under the bench's load, profiled).
async def security_layer(request: Request) -> SecurityLayer:
    return request.app.state.security


Security = Annotated[SecurityLayer, Depends(security_layer)]


async def client_address(request: Request, security: Security) -> str | None:
    """The client's address: the socket peer, or the hop before a trusted proxy."""
    return security.client_address(request)


Address = Annotated[str | None, Depends(client_address)]


# A session and a role check each read the security layer from the app themselves instead
# of through ``Security``: every nested dependency is one more solve_dependencies pass per
# request (that solving was 17 % of the gateway's samples under the bench's load). The
# session is resolved once per request either way (Sessions.resolve keeps it on the request).
async def current_session(request: Request) -> SessionInfo:
    """The bearer session; 401 if none, 403 password_change_required if pending."""
    security: SecurityLayer = request.app.state.security
    return await security.sessions.resolve(request)


Session = Annotated[SessionInfo, Depends(current_session)]


def require_role(*roles: str) -> Callable[[Request], Awaitable[Actor]]:
    async def signed_in_as(request: Request) -> Actor:
        session = await current_session(request)  # called, not a dependency: one solve fewer
        if session.role not in roles:
            raise ApiError(403, "forbidden", f"this needs the role {' or '.join(roles)}")
        return session.actor

    return signed_in_as


AnyActor = Annotated[Actor, Depends(require_role("worker", "manager", "admin"))]
WorkerActor = Annotated[Actor, Depends(require_role("worker"))]
StaffActor = Annotated[Actor, Depends(require_role("manager", "admin"))]
AdminActor = Annotated[Actor, Depends(require_role("admin"))]


async def mfa_elevated_admin(session: Session) -> SessionInfo:
    if session.role != "admin":
        raise ApiError(403, "forbidden", "this needs the role admin")
    if not session.mfa_elevated:
        raise ApiError(403, "mfa_required",
                       "confirm with a TOTP code first (POST /api/auth/mfa/step-up)")
    return session


MfaAdmin = Annotated[SessionInfo, Depends(mfa_elevated_admin)]


async def emergency_switch(request: Request) -> Emergency:
    return request.app.state.emergency


EmergencySwitch = Annotated[Emergency, Depends(emergency_switch)]


async def rpc_client(request: Request) -> RpcClient:
    return request.app.state.rpc


Rpc = Annotated[RpcClient, Depends(rpc_client)]

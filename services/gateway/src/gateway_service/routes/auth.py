"""Logging in and out, password change, MFA, login-link exchange, developer quick-login."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from contracts.rpc import Role
from gateway_service.deps import Address, Security, Session
from gateway_service.errors import ApiError
from gateway_service.security.accounts import LoginResult, Me
from gateway_service.security.addresses import is_loopback, is_loopback_host
from gateway_service.security.mfa import MfaSetup
from gateway_service.settings import GatewaySettings

router = APIRouter(tags=["auth"])

# codes of these routes beyond the shared ones (gateway_service.errors.document_refusals)
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too_many_attempts: Retry-After says when to try again"}}
CREDENTIALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "invalid_credentials / invalid_link"}, **THROTTLED}


class LoginBody(BaseModel):
    login: str = Field(min_length=1, max_length=64)
    # Longer than the policy's 128 so an old long password still verifies; bounded to
    # keep argon2 work per request small.
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    user_id: str
    login: str
    role: str
    must_change_password: bool


class LoginOut(BaseModel):
    token: str
    user: UserOut


class PasswordBody(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    token: str


class MeOut(UserOut):
    mfa_enabled: bool
    mfa_elevated: bool
    mfa_elevated_until: datetime | None = None
    session_expires_at: datetime | None = None


class MfaSetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_png_base64: str


class CodeBody(BaseModel):
    code: str = Field(min_length=1, max_length=16)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class StepUpBody(BaseModel):
    code: str | None = Field(None, max_length=16)
    recovery_code: str | None = Field(None, max_length=32)


class StepUpOut(BaseModel):
    mfa_elevated_until: datetime


class LinkBody(BaseModel):
    token: str = Field(min_length=1, max_length=256)


class QuickLoginBody(BaseModel):
    role: Role


@router.post("/auth/login", response_model=LoginOut, responses=CREDENTIALS)
async def login(body: LoginBody, security: Security, address: Address) -> LoginResult:
    """Password login: a bearer token and the user (must_change_password tells the UI to
    ask for a new password first)."""
    return await security.accounts.login(body.login, body.password, address)


@router.post("/auth/password", response_model=TokenOut, responses=THROTTLED)
async def change_password(body: PasswordBody, session: Session, security: Security,
                          address: Address) -> TokenOut:
    """Change the password (the old one is required); every session of the user ends and
    a fresh token is returned."""
    token = await security.accounts.change_password(session, body.old_password,
                                                    body.new_password, address)
    return TokenOut(token=token)


@router.post("/auth/logout")
async def logout(session: Session, security: Security, address: Address) -> dict[str, Any]:
    await security.sessions.logout(session, address)
    return {"ok": True}


@router.post("/auth/logout-all")
async def logout_all(session: Session, security: Security,
                     address: Address) -> dict[str, Any]:
    n = await security.sessions.logout_all(session, address)
    return {"ok": True, "sessions_revoked": n}


@router.get("/auth/me", response_model=MeOut)
async def me(session: Session, security: Security) -> Me:
    return await security.accounts.me(session)


@router.post("/auth/mfa/setup", response_model=MfaSetupOut)
async def mfa_setup(session: Session, security: Security, address: Address) -> MfaSetup:
    """Start TOTP enrolment: the secret, its otpauth:// URI and a QR code (PNG, base64)."""
    return await security.mfa.setup(session, address)


@router.post("/auth/mfa/confirm", response_model=RecoveryCodesOut, responses=THROTTLED)
async def mfa_confirm(body: CodeBody, session: Session, security: Security,
                      address: Address) -> RecoveryCodesOut:
    """Finish enrolment with a current code; returns 10 single-use recovery codes, once."""
    codes = await security.mfa.confirm(session, body.code, address)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/auth/mfa/step-up", response_model=StepUpOut, responses=THROTTLED)
async def mfa_step_up(body: StepUpBody, session: Session, security: Security,
                      address: Address) -> StepUpOut:
    """Prove the second factor (a TOTP code or a recovery code): the session is MFA-elevated
    for a few minutes (needed for payouts and the emergency switch)."""
    until = await security.mfa.step_up(session, body.code, body.recovery_code, address)
    return StepUpOut(mfa_elevated_until=until)


@router.post("/auth/login-link", response_model=LoginOut, responses=CREDENTIALS)
async def login_link(body: LinkBody, security: Security, address: Address) -> LoginResult:
    """Exchange a personal login link's token (from the URL fragment) for a session."""
    return await security.login_links.login(body.token, address)


# Mounted only in development with dev_quick_login on (see main.py); elsewhere it does not
# exist. The body is read after the origin checks so that a refusal looks like any 404.
dev_router = APIRouter(tags=["dev"])


def _from_this_machine(request: Request, address: str | None) -> bool:
    """Loopback socket, loopback client and a loopback Host: a web page the developer has
    open elsewhere (DNS rebinding, a form posting here) gets nothing."""
    peer = request.client.host if request.client else None
    return (is_loopback(peer) and is_loopback(address)
            and is_loopback_host(request.headers.get("host")))


def quick_login_answers(request: Request, settings: GatewaySettings,
                        address: str | None) -> bool:
    """Whether the developer quick-login answers this caller (the web UI shows its role
    buttons only then)."""
    return bool(settings.environment == "development" and settings.dev_quick_login
                and _from_this_machine(request, address))


@dev_router.post("/dev/quick-login", response_model=LoginOut, include_in_schema=False)
async def quick_login(request: Request, security: Security, address: Address) -> LoginResult:
    """Development only, from this machine only, JSON only: a session of user dev-<role>."""
    if not quick_login_answers(request, security.settings, address):
        raise ApiError(404, "not_found", "Not Found")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":  # a cross-site form can post text/plain, not JSON
        raise ApiError(415, "unsupported_media_type", "send application/json")
    try:
        body = QuickLoginBody.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise ApiError(422, "validation_error", "send {\"role\": \"worker|manager|admin\"}") \
            from None
    return await security.accounts.dev_quick_login(body.role, address)

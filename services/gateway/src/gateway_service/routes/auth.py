"""Logging in and out, password change, MFA, login-link exchange, developer quick-login."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from gateway_service.auth import Auth, is_loopback
from gateway_service.deps import Session
from gateway_service.errors import ApiError

router = APIRouter(tags=["auth"])


def auth_of(request: Request) -> Auth:
    return request.app.state.auth


def peer(request: Request) -> str | None:
    """The TCP peer; X-Forwarded-For is deliberately ignored."""
    return request.client.host if request.client else None


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
    role: Literal["worker", "manager", "admin"]


@router.post("/auth/login", response_model=LoginOut)
async def login(body: LoginBody, request: Request) -> dict:
    """Password login: a bearer token and the user (must_change_password tells the UI to
    ask for a new password first)."""
    return await auth_of(request).login(body.login, body.password, peer(request))


@router.post("/auth/password", response_model=TokenOut)
async def change_password(body: PasswordBody, session: Session, request: Request) -> dict:
    """Change the password (the old one is required); every session of the user ends and
    a fresh token is returned."""
    token = await auth_of(request).change_password(session, body.old_password,
                                                   body.new_password, peer(request))
    return {"token": token}


@router.post("/auth/logout")
async def logout(session: Session, request: Request) -> dict:
    await auth_of(request).logout(session, peer(request))
    return {"ok": True}


@router.post("/auth/logout-all")
async def logout_all(session: Session, request: Request) -> dict:
    n = await auth_of(request).logout_all(session, peer(request))
    return {"ok": True, "sessions_revoked": n}


@router.get("/auth/me", response_model=MeOut)
async def me(session: Session, request: Request) -> dict:
    return await auth_of(request).me(session)


@router.post("/auth/mfa/setup", response_model=MfaSetupOut)
async def mfa_setup(session: Session, request: Request) -> dict:
    """Start TOTP enrolment: the secret, its otpauth:// URI and a QR code (PNG, base64)."""
    return await auth_of(request).mfa_setup(session, peer(request))


@router.post("/auth/mfa/confirm", response_model=RecoveryCodesOut)
async def mfa_confirm(body: CodeBody, session: Session, request: Request) -> dict:
    """Finish enrolment with a current code; returns 10 single-use recovery codes, once."""
    return await auth_of(request).mfa_confirm(session, body.code, peer(request))


@router.post("/auth/mfa/step-up", response_model=StepUpOut)
async def mfa_step_up(body: StepUpBody, session: Session, request: Request) -> dict:
    """Prove the second factor (a TOTP code or a recovery code): the session is MFA-elevated
    for a few minutes (needed for payouts and the emergency switch)."""
    return await auth_of(request).mfa_step_up(session, body.code, body.recovery_code,
                                              peer(request))


@router.post("/auth/login-link", response_model=LoginOut)
async def login_link(body: LinkBody, request: Request) -> dict:
    """Exchange a personal login link's token (from the URL fragment) for a session."""
    return await auth_of(request).login_with_link(body.token, peer(request))


# Mounted only in development with dev_quick_login on (see main.py); elsewhere it does not
# exist. The body is read after the peer check so that a refusal looks like any 404.
dev_router = APIRouter(tags=["dev"])


@dev_router.post("/dev/quick-login", response_model=LoginOut, include_in_schema=False)
async def quick_login(request: Request) -> dict:
    """Development only, from loopback only: a session of user dev-<role>."""
    s = request.app.state.settings
    if not (s.environment == "development" and s.dev_quick_login and is_loopback(peer(request))):
        raise ApiError(404, "not_found", "Not Found")
    try:
        body = QuickLoginBody.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise ApiError(422, "validation_error", "send {\"role\": \"worker|manager|admin\"}") \
            from None
    return await auth_of(request).dev_quick_login(body.role, peer(request))

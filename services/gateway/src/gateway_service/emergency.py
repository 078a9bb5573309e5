"""Emergency read-only mode: the gateway writes the switch, every process watches it.

The state lives in a JetStream KV bucket (``contracts.streams.EMERGENCY_BUCKET``); the
kit's ``EmergencyWatch`` keeps each process's copy (a watch plus a periodic re-read), so
checks are a look at memory. The gateway is the one writer: it creates the bucket and
sets the key.

While it is on, every client POST/PUT/PATCH/DELETE is answered 503 ``read_only`` with a
Retry-After, except what an incident needs: logging in and out (all sessions too), the
MFA step-up, changing one's password, an admin disabling an account, and the switch
itself (each audited where it acts). Reads keep working; the services pause their
background jobs that change state.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.events import EmergencyChanged
from contracts.streams import EMERGENCY_KEY
from gateway_service.security import SecurityLayer
from servicekit.emergency import EmergencyWatch

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT_PATHS = frozenset({
    "/api/auth/login", "/api/auth/login-link", "/api/dev/quick-login", "/api/auth/logout",
    "/api/auth/logout-all", "/api/auth/mfa/step-up", "/api/auth/password",
    "/api/admin/emergency",
})
EXEMPT_PATTERNS = (re.compile(r"^/api/admin/users/[^/]+/disable$"),)


# 1 while emergency read-only mode is on, as this gateway sees it (alert EmergencyModeOn)
READ_ONLY = Gauge("gateway_emergency_read_only",
                  "Whether emergency read-only mode is on (1) or off (0)")


def exempt(path: str) -> bool:
    """Whether a write to ``path`` still works in read-only mode."""
    path = path.rstrip("/")
    return path in EXEMPT_PATHS or any(p.match(path) for p in EXEMPT_PATTERNS)


class Emergency(EmergencyWatch):
    """The switch's writer (and this process's watch, the kit's)."""

    async def start(self, nc: NATS) -> None:
        await super().start(nc)
        READ_ONLY.set(1 if self.enabled else 0)

    def _apply(self, raw: bytes | None) -> None:
        super()._apply(raw)
        READ_ONLY.set(1 if self.enabled else 0)

    async def open_bucket(self, nc: NATS) -> Any:
        js = nc.jetstream()
        try:
            return await js.key_value(self.bucket_name)
        except BucketNotFoundError:
            return await js.create_key_value(bucket=self.bucket_name, history=16,
                                             description="emergency read-only mode")

    async def set(self, *, enabled: bool, reason: str, by_user_id: str) -> dict[str, Any]:
        if self._kv is None:
            raise RuntimeError("the emergency switch is not started")
        state = {"enabled": enabled, "reason": reason, "by_user_id": by_user_id,
                 "changed_at": datetime.now(UTC).isoformat()}
        await self._kv.put(EMERGENCY_KEY, json.dumps(state).encode())
        self.state = state
        READ_ONLY.set(1 if enabled else 0)
        return state

    async def switch(self, security: SecurityLayer, *, enabled: bool, reason: str,
                     by_user_id: str, address: str | None) -> dict[str, Any]:
        """Set the switch, audit it and publish ``gateway.emergency.changed``."""
        state = await self.set(enabled=enabled, reason=reason, by_user_id=by_user_id)
        async with security.ctx.uow() as uow:
            await security.audit.record("emergency.changed", by_user_id, "emergency",
                                        {"enabled": enabled, "reason": reason},
                                        address=address, store=uow.store)
            uow.record(EmergencyChanged(enabled=enabled, reason=reason, by_user_id=by_user_id))
        return state


class ReadOnlyMiddleware:
    """Refuses client writes while emergency mode is on and marks every response."""

    def __init__(self, app: ASGIApp, emergency: Emergency, retry_after_s: int) -> None:
        self.app = app
        self.emergency = emergency
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.emergency.enabled:
            await self.app(scope, receive, send)
            return
        if scope.get("method", "GET").upper() in MUTATING and not exempt(scope.get("path", "")):
            body = json.dumps({"error": {
                "code": "read_only",
                "message": "the platform is in emergency read-only mode; reads work, "
                           "changes are refused for now",
                "details": {"reason": self.emergency.state.get("reason", "")}}}).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", self.retry_after), (b"x-read-only", b"on")]})
            await send({"type": "http.response.body", "body": body})
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-read-only", b"on")]
            await send(message)

        await self.app(scope, receive, marked)

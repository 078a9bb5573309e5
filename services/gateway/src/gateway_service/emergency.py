"""Emergency read-only mode, shared by every gateway replica through a JetStream KV bucket.

While it is on, every client POST/PUT/PATCH/DELETE is answered 503 ``read_only`` with a
Retry-After (except logging in and out, MFA step-up and the switch itself); reads keep
working and the services keep processing events already on the bus, so nothing is lost.
Each replica watches the key (and re-reads it periodically as a safety net), so the
middleware decides from memory without I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gateway.emergency")

KEY = "state"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests that still work in read-only mode: getting in and out, the second factor
# needed to switch, and the switch itself.
EXEMPT_PATHS = frozenset({
    "/api/auth/login", "/api/auth/login-link", "/api/dev/quick-login", "/api/auth/logout",
    "/api/auth/logout-all", "/api/auth/mfa/step-up", "/api/admin/emergency",
})


class Emergency:
    def __init__(self, bucket: str, *, refresh_s: float = 5.0) -> None:
        self.bucket_name = bucket
        self.refresh_s = refresh_s
        self.state: dict[str, Any] = {"enabled": False, "reason": "", "by_user_id": None,
                                      "changed_at": None}
        self._kv: Any = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def enabled(self) -> bool:
        return bool(self.state.get("enabled"))

    async def start(self, nc: NATS) -> None:
        js = nc.jetstream()
        try:
            self._kv = await js.key_value(self.bucket_name)
        except BucketNotFoundError:
            self._kv = await js.create_key_value(bucket=self.bucket_name, history=16,
                                                 description="gateway emergency read-only mode")
        await self.refresh()
        self._tasks = [asyncio.create_task(self._watch()),
                       asyncio.create_task(self._refresh_loop())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _apply(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("ignoring a malformed emergency state in the KV bucket")
            return
        if data != self.state:
            self.state = data
            log.warning("emergency read-only mode is %s", "ON" if self.enabled else "off")

    async def refresh(self) -> None:
        try:
            entry = await self._kv.get(KEY)
        except KeyNotFoundError:
            return
        self._apply(entry.value)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus may be reconnecting: keep the last state
                log.warning("emergency refresh failed: %s", type(exc).__name__)

    async def _watch(self) -> None:
        while True:
            watcher = None
            try:
                watcher = await self._kv.watch(KEY)
                async for entry in watcher:
                    if entry is not None and entry.operation is None:
                        self._apply(entry.value)
            except asyncio.CancelledError:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()
                raise
            except Exception as exc:
                log.warning("emergency watch failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1.0)

    async def set(self, *, enabled: bool, reason: str, by_user_id: str) -> dict[str, Any]:
        state = {"enabled": enabled, "reason": reason, "by_user_id": by_user_id,
                 "changed_at": datetime.now(UTC).isoformat()}
        await self._kv.put(KEY, json.dumps(state).encode())
        self.state = state
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
        path = scope.get("path", "")
        if scope.get("method", "GET").upper() in MUTATING and path.rstrip("/") not in EXEMPT_PATHS:
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

"""ASGI middleware of the public app: security headers, known Hosts only, no NUL bytes."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_service.security.addresses import host_name

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Security headers on every response; API answers are never cached."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security",
                                 b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope.get("path", "").startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if no_store and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


def allowed(name: str, hosts: list[str]) -> bool:
    """``name`` is one of ``hosts``; ``"*.example.com"`` matches subdomains, ``"*"`` any."""
    return any(h == "*" or name == h or (h.startswith("*.") and name.endswith(h[1:]))
               for h in hosts)


class TrustedHostsMiddleware:
    """Answers only requests whose ``Host`` is one of ``hosts`` (400 ``unknown_host``):
    a page on another name that resolves to this server (DNS rebinding) gets nothing."""

    def __init__(self, app: ASGIApp, *, hosts: list[str]) -> None:
        self.app = app
        self.hosts = [h.strip().lower() for h in hosts if h.strip()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not allowed(host_name(host), self.hosts):
                await _refuse(send, 400, "unknown_host", "this server does not answer that Host")
                return
        await self.app(scope, receive, send)


# JSON carries a NUL only as the escape \u0000 (an odd run of backslashes before "u0000":
# an even run is an escaped backslash followed by the text "u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def holds_nul(body: bytes) -> bool:
    return b"\x00" in body or (b"u0000" in body and _JSON_NUL.search(body) is not None)


class RefuseNulMiddleware:
    """A NUL character anywhere in a request (path, query string, body) is refused with 422
    before any route sees it: no database stores one in a text value, so it would fail
    deep inside a service instead. Bodies up to ``max_body`` bytes are checked (larger
    ones are refused by their routes)."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            await _refuse(send, 422, "validation_error",
                          "the path or query string holds a NUL character")
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more and size <= self.max_body:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        if not more and holds_nul(b"".join(m.get("body", b"") for m in chunks)):
            await _refuse(send, 422, "validation_error", "the request holds a NUL character "
                          "(\\u0000), which no text field accepts")
            return
        await self.app(scope, _replay(chunks, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

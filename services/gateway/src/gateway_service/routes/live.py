"""Live updates for the web UI: server-sent events, fed from the bus.

The gateway subscribes (core NATS, one subscription per subject for the whole process)
to events the services already publish and tells each connected person which of their
views changed: ``credits``, ``payouts``, ``decisions``, ``assignments``, ``restrictions``
for the worker they concern, ``review_queue`` for managers and admins, ``emergency`` for
everyone; ``tickets`` when a ticket of theirs is answered or closed (staff: when one is
opened, reopened, assigned or closed), ``chat`` when a thread they read changed (a task
chat: its worker and the staff; a pool chat: everyone; a mute: the muted user). An event
carries only that hint, never the event's data (a ``task.submitted`` holds the gross
price): the page then reads the change through the usual API, with the usual checks.

A stream lasts at most ``live_max_s`` (the browser reconnects), so a revoked session
stops receiving hints within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gateway_service.deps import EmergencySwitch, Security, Session

log = logging.getLogger("gateway.live")

router = APIRouter(tags=["live"])

# subject -> (topic, who hears it): "worker" = the worker named in the event, "staff" =
# every manager and admin.
SUBJECTS: dict[str, tuple[str, str]] = {
    "ledger.credited": ("credits", "worker"),
    "ledger.payout.>": ("payouts", "worker"),
    "review.accepted": ("decisions", "worker"),
    "review.rejected": ("decisions", "worker"),
    "task.expired": ("assignments", "worker"),
    "rules.restriction.>": ("restrictions", "worker"),
    "task.submitted": ("review_queue", "staff"),
}
STAFF_ALSO = {"review.accepted", "review.rejected"}  # a decision leaves the queue too


@dataclass(frozen=True)
class Audience:
    """Who hears a support event: these users, the staff, everyone."""

    users: frozenset[str] = frozenset()
    staff: bool = False
    everyone: bool = False

    def includes(self, user_id: str, role: str) -> bool:
        return (self.everyone or user_id in self.users
                or (self.staff and role in ("manager", "admin")))


def _ticket_audience(subject: str, data: dict[str, Any]) -> Audience:
    owner = frozenset({data["user_id"]}) if data.get("user_id") else frozenset()
    if subject == "support.ticket.answered":
        return Audience(users=owner)
    return Audience(users=owner if subject == "support.ticket.closed" else frozenset(),
                    staff=True)


def _chat_audience(subject: str, data: dict[str, Any]) -> Audience:
    if subject == "support.chat.muted":
        return Audience(users=frozenset({data.get("user_id") or ""}))
    if data.get("kind") == "pool":
        return Audience(everyone=True)
    return Audience(users=frozenset({data.get("worker_id") or ""}), staff=True)


# subject -> (topic, who hears it, from the event's data)
SUPPORT_SUBJECTS: dict[str, tuple[str, Callable[[str, dict[str, Any]], Audience]]] = {
    "support.ticket.>": ("tickets", _ticket_audience),
    "support.chat.>": ("chat", _chat_audience),
}
HEARTBEAT_S = 15.0
QUEUE_SIZE = 64


class LiveHub:
    """Fans bus events out to the open streams as hints."""

    def __init__(self) -> None:
        self.listeners: dict[asyncio.Queue[str], tuple[str, str]] = {}  # queue -> (user, role)
        self._subs: list[Any] = []
        self._lock = asyncio.Lock()

    async def ensure_started(self, nc: Any) -> None:
        async with self._lock:
            if self._subs or nc is None:
                return
            for subject, (topic, audience) in SUBJECTS.items():
                self._subs.append(await nc.subscribe(
                    subject, cb=self._handler(subject, topic, audience)))
            for subject, (topic, who) in SUPPORT_SUBJECTS.items():
                self._subs.append(await nc.subscribe(
                    subject, cb=self._support_handler(topic, who)))

    async def stop(self) -> None:
        for s in self._subs:
            with contextlib.suppress(Exception):
                await s.unsubscribe()
        self._subs.clear()

    def _handler(self, subject: str, topic: str, audience: str):
        async def on_message(msg: Any) -> None:
            try:
                worker_id = (json.loads(msg.data).get("data") or {}).get("worker_id")
            except (ValueError, AttributeError):
                return
            for queue, (user_id, role) in list(self.listeners.items()):
                if audience == "worker" and role == "worker" and user_id == worker_id:
                    self._offer(queue, topic)
                if role in ("manager", "admin") and (
                        audience == "staff" or subject in STAFF_ALSO):
                    self._offer(queue, "review_queue")
        return on_message

    def _support_handler(self, topic: str, who: Callable[[str, dict[str, Any]], Audience]):
        async def on_message(msg: Any) -> None:
            try:
                data = json.loads(msg.data).get("data") or {}
                audience = who(msg.subject, data)
            except (ValueError, AttributeError, KeyError, TypeError):
                return
            for queue, (user_id, role) in list(self.listeners.items()):
                if audience.includes(user_id, role):
                    self._offer(queue, topic)
        return on_message

    @staticmethod
    def _offer(queue: asyncio.Queue[str], topic: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):   # a slow reader loses hints, not memory
            queue.put_nowait(topic)


def hub_of(request: Request) -> LiveHub:
    state = request.app.state
    if getattr(state, "live_hub", None) is None:
        state.live_hub = LiveHub()
    return state.live_hub


def sse(topic: str) -> bytes:
    return f"event: {topic}\ndata: {{}}\n\n".encode()


@router.get("/live", summary="Server-sent events: which of my views changed (hints only)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "a stream of `event: <topic>` hints"}})
async def live(session: Session, request: Request, security: Security,
               emergency: EmergencySwitch) -> StreamingResponse:
    hub = hub_of(request)
    await hub.ensure_started(getattr(request.app.state, "nats", None))
    max_s = security.settings.live_max_s
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
    hub.listeners[queue] = (session.user_id, session.role)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n" + sse("ready")
            read_only = emergency.enabled
            ends = time.monotonic() + max_s
            last_beat = time.monotonic()
            while (now := time.monotonic()) < ends:
                if await request.is_disconnected():
                    return
                try:
                    topic = await asyncio.wait_for(queue.get(), min(1.0, ends - now))
                    yield sse(topic)
                except TimeoutError:
                    pass
                if emergency.enabled != read_only:
                    read_only = emergency.enabled
                    yield sse("emergency")
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    last_beat = time.monotonic()
                    yield b": keep-alive\n\n"
        finally:
            hub.listeners.pop(queue, None)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

"""Dead letters for admins: page through the DLQ, replay one letter to the one consumer that
dead-lettered it (the owning service applies it again through its inbox, so a replay twice
changes nothing), or discard it. Replays and discards are audited.

The gateway reads and deletes letters itself (its bus user may get and delete DLQ messages,
nothing else of the stream); a replay is an RPC to the service that owns the consumer, since
only that service may apply its events (docs/decisions.md 28).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from nats.js.errors import NotFoundError as JsNotFound
from pydantic import BaseModel

from contracts.rpc import ops
from gateway_service.deps import Address, AdminActor, Rpc, Security
from gateway_service.errors import ApiError

router = APIRouter(tags=["admin: dead letters"])
DLQ = "DLQ"
Seq = Annotated[int, Path(ge=1, le=2**53, description="the letter's sequence in the DLQ")]


class DeadLetter(BaseModel):
    seq: int
    service: str | None
    consumer: str
    subject: str
    reason: str
    error_type: str
    error_message: str
    deliveries: int | None
    dead_lettered_at: datetime | None
    size: int


class DeadLetters(BaseModel):
    items: list[DeadLetter]
    # the stream's message count, and where the next page starts (None: this was the last)
    total: int
    next_after_seq: int | None


def _service_of(consumer: str) -> str | None:
    service = consumer.split("__", 1)[0]
    return service if service in ops.SERVICES else None


def _letter(seq: int, msg: Any) -> DeadLetter:
    h = dict(msg.headers or {})
    deliveries = h.get("Dlq-Deliveries", "")
    return DeadLetter(
        seq=seq, service=_service_of(h.get("Dlq-Consumer", "")),
        consumer=h.get("Dlq-Consumer", "?"), subject=h.get("Dlq-Original-Subject", "?"),
        reason=h.get("Dlq-Reason", "?"), error_type=h.get("Dlq-Error-Type", ""),
        error_message=h.get("Dlq-Error-Message", ""),
        deliveries=int(deliveries) if deliveries.isdigit() else None,
        dead_lettered_at=_when(getattr(msg, "time", None)), size=len(msg.data or b""))


def _when(value: Any) -> datetime | None:
    """The server's time of the letter (RFC 3339 with nanoseconds, or already parsed)."""
    if isinstance(value, datetime) or value is None:
        return value
    text = str(value).replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    if rest:  # at most microseconds for Python
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _js(request: Request) -> Any:
    nc = getattr(request.app.state, "nats", None)
    if nc is None or not nc.is_connected:
        raise ApiError(503, "bus_unavailable", "the message bus is not reachable right now",
                       headers={"Retry-After": "2"})
    return nc.jetstream()


@router.get("/admin/dead-letters", response_model=DeadLetters,
            summary="Dead letters, oldest first, a page at a time")
async def list_dead_letters(
        _actor: AdminActor, request: Request,
        after_seq: Annotated[int, Query(ge=0, le=2**53)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 50) -> DeadLetters:
    js = _js(request)
    info = await js.stream_info(DLQ)
    state = info.state
    items: list[DeadLetter] = []
    seq = max(after_seq + 1, state.first_seq or 1)
    while state.messages and seq <= state.last_seq and len(items) < limit:
        try:
            items.append(_letter(seq, await js.get_msg(DLQ, seq)))
        except JsNotFound:  # replayed or discarded: a gap
            pass
        seq += 1
    more = bool(items) and seq <= state.last_seq
    return DeadLetters(items=items, total=state.messages,
                       next_after_seq=items[-1].seq if more else None)


async def _get(js: Any, seq: int) -> DeadLetter:
    try:
        return _letter(seq, await js.get_msg(DLQ, seq))
    except JsNotFound:
        raise ApiError(404, "dead_letter_not_found", f"there is no dead letter {seq} "
                       "(already replayed or discarded?)") from None


@router.post("/admin/dead-letters/{seq}/replay", response_model=ops.DeadLetterReplayed,
             summary="Apply a dead letter again, to the consumer that dead-lettered it")
async def replay_dead_letter(seq: Seq, actor: AdminActor, request: Request, rpc: Rpc,
                             security: Security, address: Address) -> ops.DeadLetterReplayed:
    letter = await _get(_js(request), seq)
    if letter.service is None:
        raise ApiError(422, "dead_letter_not_replayable",
                       f"letter {seq} came from {letter.consumer}, which no service owns")
    done = await rpc.call(ops.DLQ_REPLAY[letter.service],
                          ops.DeadLetterReplay(actor=actor, seq=seq))
    await security.audit.record("dead_letter.replayed", actor.user_id, str(seq), {
        "consumer": done.consumer, "subject": done.subject, "outcome": done.outcome},
        address=address)
    return done


@router.post("/admin/dead-letters/{seq}/discard", response_model=DeadLetter,
             summary="Remove a dead letter without applying it")
async def discard_dead_letter(seq: Seq, actor: AdminActor, request: Request,
                              security: Security, address: Address) -> DeadLetter:
    js = _js(request)
    letter = await _get(js, seq)
    try:
        await js.delete_msg(DLQ, seq)
    except JsNotFound:
        raise ApiError(404, "dead_letter_not_found", f"there is no dead letter {seq}") from None
    await security.audit.record("dead_letter.discarded", actor.user_id, str(seq), {
        "consumer": letter.consumer, "subject": letter.subject, "reason": letter.reason},
        address=address)
    return letter

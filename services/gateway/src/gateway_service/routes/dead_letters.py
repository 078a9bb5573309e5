"""Dead letters for admins: page through the DLQ (filtered by service, consumer or subject),
show one with its headers and payload, replay one letter to the one consumer that
dead-lettered it (the owning service applies it again through its inbox, so a replay twice
changes nothing), or discard it with a reason. Replays and discards are audited.

The gateway reads and deletes letters itself (its bus user may get and delete DLQ messages,
nothing else of the stream); a replay is an RPC to the service that owns the consumer, since
only that service may apply its events; the gateway removes the letter once it is applied
(docs/decisions.md 28).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from nats.js.errors import NotFoundError as JsNotFound
from pydantic import BaseModel, Field

from contracts.rpc import ops
from gateway_service.deps import Address, AdminActor, Rpc, Security
from gateway_service.errors import ApiError
from servicekit import dlq

router = APIRouter(tags=["admin: dead letters"])
DLQ = dlq.DLQ_STREAM
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


class DeadLetterDetail(DeadLetter):
    headers: dict[str, str]
    # the original message as it arrived (an event envelope, normally JSON), cut at 64 KiB
    payload: str
    payload_json: Any = None


class DiscardBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500,
                        description="why the letter is dropped (kept in the audit log)")


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


SCAN_MAX = 2_000  # letters looked at per page at the most (filters may skip many)
Filter = Annotated[str | None, Query(min_length=1, max_length=120)]


@router.get("/admin/dead-letters", response_model=DeadLetters,
            summary="Dead letters, oldest first, a page at a time, filtered by service, "
                    "consumer or original subject")
async def list_dead_letters(
        _actor: AdminActor, request: Request,
        after_seq: Annotated[int, Query(ge=0, le=2**53)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        service: Filter = None, consumer: Filter = None, subject: Filter = None) -> DeadLetters:
    js = _js(request)
    state = (await js.stream_info(DLQ)).state
    items: list[DeadLetter] = []
    seq, scanned, exhausted = after_seq + 1, 0, False
    while len(items) < limit and scanned < SCAN_MAX:
        msg = await dlq.next_letter(js, seq)
        if msg is None:
            exhausted = True
            break
        scanned += 1
        letter = _letter(msg.seq, msg)
        if all(want is None or want == got for want, got in (
                (service, letter.service), (consumer, letter.consumer),
                (subject, letter.subject))):
            items.append(letter)
        seq = msg.seq + 1
    more = not exhausted and seq <= state.last_seq
    return DeadLetters(items=items, total=state.messages, next_after_seq=seq - 1 if more else None)


async def _message(js: Any, seq: int) -> Any:
    try:
        return await dlq.letter(js, seq)
    except dlq.NoSuchLetter:
        raise ApiError(404, "dead_letter_not_found", f"there is no dead letter {seq} "
                       "(already replayed or discarded?)") from None


@router.get("/admin/dead-letters/{seq}", response_model=DeadLetterDetail,
            summary="One dead letter with its headers and the original message")
async def show_dead_letter(seq: Seq, _actor: AdminActor, request: Request) -> DeadLetterDetail:
    msg = await _message(_js(request), seq)
    data = (msg.data or b"")[:65_536]
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    return DeadLetterDetail(**_letter(seq, msg).model_dump(),
                            headers={str(k): str(v) for k, v in (msg.headers or {}).items()},
                            payload=data.decode("utf-8", "replace"), payload_json=parsed)


@router.post("/admin/dead-letters/{seq}/replay", response_model=ops.DeadLetterReplayed,
             summary="Apply a dead letter again, to the consumer that dead-lettered it")
async def replay_dead_letter(seq: Seq, actor: AdminActor, request: Request, rpc: Rpc,
                             security: Security, address: Address) -> ops.DeadLetterReplayed:
    js = _js(request)
    letter = _letter(seq, await _message(js, seq))
    if letter.service is None:
        raise ApiError(422, "dead_letter_not_replayable",
                       f"letter {seq} came from {letter.consumer}, which no service owns")
    done = await rpc.call(ops.DLQ_REPLAY[letter.service],
                          ops.DeadLetterReplay(actor=actor, seq=seq))
    # applied (or found applied before): the letter goes; if this fails, a second replay
    # answers "duplicate" and removes it then
    with contextlib.suppress(JsNotFound):
        await js.delete_msg(DLQ, seq)
    await security.audit.record("dead_letter.replayed", actor.user_id, str(seq), {
        "consumer": done.consumer, "subject": done.subject, "outcome": done.outcome},
        address=address)
    return done


@router.post("/admin/dead-letters/{seq}/discard", response_model=DeadLetter,
             summary="Remove a dead letter without applying it")
async def discard_dead_letter(seq: Seq, body: DiscardBody, actor: AdminActor,
                              request: Request, security: Security,
                              address: Address) -> DeadLetter:
    js = _js(request)
    letter = _letter(seq, await _message(js, seq))
    try:
        await js.delete_msg(DLQ, seq)
    except JsNotFound:
        raise ApiError(404, "dead_letter_not_found", f"there is no dead letter {seq}") from None
    await security.audit.record("dead_letter.discarded", actor.user_id, str(seq), {
        "consumer": letter.consumer, "subject": letter.subject, "dead_lettered_for":
        letter.reason, "reason": body.reason},
        address=address)
    return letter

"""Ops RPCs every service answers (served by the service kit)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.rpc import ADMIN, RpcRequest, RpcSpec, rpc

SERVICES = ("tasks", "review", "ledger", "rules", "support")


class DiagnosticsRequest(RpcRequest):
    pass


class ConsumerLag(BaseModel):
    consumer: str
    stream: str
    pending: int
    ack_pending: int
    redelivered: int


class Diagnostics(BaseModel):
    service: str
    database: str
    bus: str
    outbox_backlog: int
    outbox_lag_seconds: float
    consumers: list[ConsumerLag]
    details: dict[str, Any] = {}


def ping_subject(service: str) -> str:
    """Every replica of ``service`` answers here (no queue group): the gateway counts the
    replicas that answer a scatter request (``replicas_seen`` in diagnostics). Under
    ``rpc.<service>.`` so the bus permissions that let the service serve its RPCs and the
    gateway call them cover it."""
    return f"rpc.{service}.ops.ping"


class Pong(BaseModel):
    service: str
    instance: str  # host name and process id: the pod's name in Kubernetes


DIAGNOSTICS: dict[str, RpcSpec[DiagnosticsRequest, Diagnostics]] = {
    s: rpc(s, "diagnostics", DiagnosticsRequest, Diagnostics,
           f"{s}: database, bus, outbox backlog and consumer lag (admin only)", roles=ADMIN)
    for s in SERVICES
}


class DeadLetterReplay(RpcRequest):
    """Apply a dead letter again, to the one consumer that dead-lettered it."""

    seq: int = Field(ge=1, le=2**53, description="the letter's sequence in the DLQ stream")


class DeadLetterReplayed(BaseModel):
    seq: int
    consumer: str
    subject: str
    # applied: the handler ran and committed; duplicate: the consumer had already applied
    # this event (its inbox knew it), nothing changed; either way the letter is removed
    outcome: Literal["applied", "duplicate"]


DLQ_REPLAY: dict[str, RpcSpec[DeadLetterReplay, DeadLetterReplayed]] = {
    s: rpc(s, "dlq_replay", DeadLetterReplay, DeadLetterReplayed,
           f"{s}: apply one of its dead letters again, to the consumer that dead-lettered it "
           "(admin only)", roles=ADMIN)
    for s in SERVICES
}

"""Ops RPCs every service answers (served by the service kit)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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


DIAGNOSTICS: dict[str, RpcSpec[DiagnosticsRequest, Diagnostics]] = {
    s: rpc(s, "diagnostics", DiagnosticsRequest, Diagnostics,
           f"{s}: database, bus, outbox backlog and consumer lag (admin only)", roles=ADMIN)
    for s in SERVICES
}

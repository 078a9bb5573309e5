"""Request/reply contracts between the gateway and the services.

Every RPC is a NATS request on ``rpc.<service>.<name>``. A reply is an
``RpcReply``: ``{"ok": true, "data": {...}}`` or ``{"ok": false, "error":
{"code", "message", "details", "status"}}``. ``status`` is the HTTP status the
gateway answers with (always 4xx for a caller's mistake).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["worker", "manager", "admin"]


class Actor(BaseModel):
    """Who asks: set by the gateway from the session, never by the client."""

    user_id: str
    role: Role


class RpcRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Actor


class ErrorBody(BaseModel):
    code: str
    message: str
    status: int = 400
    details: Any = None


class RpcReply(BaseModel):
    ok: bool
    data: Any = None
    error: ErrorBody | None = None


MAX_OFFSET = 1_000_000_000  # far beyond any real list; keeps OFFSET inside a database integer


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@dataclass(frozen=True)
class RpcSpec:
    subject: str
    request: type[BaseModel]
    response: type[BaseModel] | None
    description: str


_RPCS: dict[str, RpcSpec] = {}


def rpc(service: str, name: str, request: type[BaseModel], response: type[BaseModel] | None,
        description: str) -> RpcSpec:
    """Declare one RPC; returns its spec (use ``spec.subject`` on both sides)."""
    subject = f"rpc.{service}.{name}"
    if subject in _RPCS:
        raise ValueError(f"rpc {subject} declared twice")
    spec = RpcSpec(subject, request, response, description)
    _RPCS[subject] = spec
    return spec


def all_rpcs() -> list[RpcSpec]:
    _load_all()
    return sorted(_RPCS.values(), key=lambda s: s.subject)


def _load_all() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")

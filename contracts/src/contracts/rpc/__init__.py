"""Request/reply contracts between the gateway and the services.

Every RPC is a NATS request on ``rpc.<service>.<name>``. A reply is an
``RpcReply``: ``{"ok": true, "data": {...}}`` or ``{"ok": false, "error":
{"code", "message", "details", "status"}}``. ``status`` is the HTTP status the
gateway answers with (always 4xx for a caller's mistake).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Role = Literal["worker", "manager", "admin"]
ROLES: frozenset[Role] = frozenset(get_args(Role))
STAFF: frozenset[Role] = frozenset({"manager", "admin"})
ADMIN: frozenset[Role] = frozenset({"admin"})
WORKER: frozenset[Role] = frozenset({"worker"})


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


def _in_utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise ValueError("the time is out of range once converted to UTC") from None


# A point in time given by a caller (a filter's since/until): in UTC, a time without a
# timezone taken as UTC; refused (422) when UTC cannot hold it.
Instant = Annotated[datetime, AfterValidator(_in_utc)]


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


ReqT = TypeVar("ReqT", bound=BaseModel)
RespT = TypeVar("RespT", bound=BaseModel)


@dataclass(frozen=True)
class RpcSpec(Generic[ReqT, RespT]):
    """One RPC: its subject, request and response models, and who may call it.

    The server refuses a caller whose role is not in ``roles`` before the handler
    runs, and refuses to send a reply that is not a ``response``; the client hands
    back a ``response`` instance.
    """

    subject: str
    request: type[ReqT]
    response: type[RespT]
    description: str
    roles: frozenset[Role]


_RPCS: dict[str, RpcSpec[Any, Any]] = {}


def rpc(service: str, name: str, request: type[ReqT], response: type[RespT],
        description: str, *, roles: Iterable[Role]) -> RpcSpec[ReqT, RespT]:
    """Declare one RPC; returns its spec (use ``spec.subject`` on both sides)."""
    subject = f"rpc.{service}.{name}"
    if subject in _RPCS:
        raise ValueError(f"rpc {subject} declared twice")
    allowed = frozenset(roles)
    if not allowed or not allowed <= ROLES:
        raise ValueError(f"rpc {subject}: roles must be a non-empty subset of {sorted(ROLES)}")
    spec = RpcSpec(subject, request, response, description, allowed)
    _RPCS[subject] = spec
    return spec


def all_rpcs() -> list[RpcSpec[Any, Any]]:
    _load_all()
    return sorted(_RPCS.values(), key=lambda s: s.subject)


def _load_all() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")

"""Routers: one per slice of a service, module-level handlers registered by decorators.

    router = Router()

    @router.rpc(rpc.TAKE)
    async def take(req: rpc.Take, ctx: TasksContext) -> rpc.TakeResult: ...

    @router.consume("review.accepted", name="review-accepted")
    async def on_accepted(event: ReviewAccepted, env: Envelope, uow: UnitOfWork,
                          ctx: TasksContext) -> None: ...

    @router.consume_batch("task.>", name="facts")
    async def on_facts(items: list[tuple[Event, Envelope]], uow: UnitOfWork,
                       ctx: RulesContext) -> None: ...

    @router.periodic(lambda s: s.sweep_interval_s, changes_state=True)
    async def expire_overdue(ctx: TasksContext) -> None: ...

The service's composition root includes the routers (``Service(..., routers=[...])``);
the handlers stay plain functions that tests call directly with a fake context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contracts.rpc import RpcSpec

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Interval = float | Callable[[Any], float]


@dataclass(frozen=True)
class RpcRoute:
    spec: RpcSpec[Any, Any]
    handler: Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class ConsumerRoute:
    subject: str | tuple[str, ...]
    name: str
    handler: Callable[..., Awaitable[None]]
    batch: bool = False
    max_deliver: int | None = None
    backoff_s: tuple[float, ...] | None = None
    ack_wait_s: float | None = None
    linger_s: float | None = None
    wanted: Callable[[Any], Awaitable[bool]] | None = None


@dataclass(frozen=True)
class PeriodicRoute:
    handler: Callable[..., Awaitable[None]]
    interval: Interval
    # a job that decides, pays or otherwise changes state waits while the platform is in
    # emergency read-only mode, and resumes when it ends
    changes_state: bool = True

    def interval_s(self, settings: Any) -> float:
        return float(self.interval(settings) if callable(self.interval) else self.interval)


@dataclass
class Router:
    rpcs: list[RpcRoute] = field(default_factory=list)
    consumers: list[ConsumerRoute] = field(default_factory=list)
    periodics: list[PeriodicRoute] = field(default_factory=list)
    startups: list[Callable[..., Awaitable[None]]] = field(default_factory=list)
    # (stream, name) of durables an earlier version declared: deleted at start
    retired: list[tuple[str, str]] = field(default_factory=list)

    def rpc(self, spec: RpcSpec[Any, Any]) -> Callable[[F], F]:
        """Serve ``spec``: ``handler(request, ctx) -> spec.response``."""

        def register(fn: F) -> F:
            self.rpcs.append(RpcRoute(spec, fn))
            return fn

        return register

    def consume(self, subject: str | tuple[str, ...], *, name: str, max_deliver: int | None = None,
                backoff_s: tuple[float, ...] | None = None, ack_wait_s: float | None = None,
                linger_s: float | None = None) -> Callable[[F], F]:
        """A durable, inbox-idempotent consumer: ``handler(event, env, uow, ctx)``.

        ``subject``: one subject (wildcards allowed) or several of one stream (the durable
        then filters on all of them, and the server delivers nothing else)."""
        return self._consumer(subject, name, False, max_deliver, backoff_s, ack_wait_s,
                              linger_s)

    def consume_batch(self, subject: str | tuple[str, ...], *, name: str,
                      max_deliver: int | None = None,
                      backoff_s: tuple[float, ...] | None = None,
                      ack_wait_s: float | None = None,
                      linger_s: float | None = None,
                      wanted: Callable[[Any], Awaitable[bool]] | None = None
                      ) -> Callable[[F], F]:
        """Like :meth:`consume`, for ``handler([(event, env), ...], uow, ctx)``: called once
        per batch with the events not seen before (a failing batch is retried message by
        message, each as a batch of one).

        ``wanted(ctx)``: a cheap read before each batch, for a handler that often has nothing
        to do (e.g. no subscriber to fan out to). False: the batch is acked with no
        transaction and no inbox rows, as nothing was written; a redelivery is then judged
        again. Only for handlers whose effect would be empty whenever it says False."""
        return self._consumer(subject, name, True, max_deliver, backoff_s, ack_wait_s,
                              linger_s, wanted)

    def _consumer(self, subject: str | tuple[str, ...], name: str, batch: bool,
                  max_deliver: int | None,
                  backoff_s: tuple[float, ...] | None, ack_wait_s: float | None,
                  linger_s: float | None,
                  wanted: Callable[[Any], Awaitable[bool]] | None = None) -> Callable[[F], F]:
        def register(fn: F) -> F:
            self.consumers.append(ConsumerRoute(subject, name, fn, batch, max_deliver,
                                                backoff_s, ack_wait_s, linger_s, wanted))
            return fn

        return register

    def periodic(self, interval: Interval, *, changes_state: bool = True) -> Callable[[F], F]:
        """Run ``handler(ctx)`` every ``interval`` seconds (a number, or a function of the
        settings) while the service runs."""

        def register(fn: F) -> F:
            self.periodics.append(PeriodicRoute(fn, interval, changes_state))
            return fn

        return register

    def on_startup(self, fn: F) -> F:
        """Run ``handler(ctx)`` once the service is connected, before it serves."""
        self.startups.append(fn)
        return fn

    def retire(self, stream: str, name: str) -> None:
        """A durable consumer this service declared in an earlier version and no longer
        has: deleted from the server when the service starts (if it is still there), so it
        does not linger, counting up messages nobody reads."""
        self.retired.append((stream, name))

    def include(self, other: Router) -> None:
        self.rpcs += other.rpcs
        self.consumers += other.consumers
        self.periodics += other.periodics
        self.startups += other.startups
        self.retired += other.retired

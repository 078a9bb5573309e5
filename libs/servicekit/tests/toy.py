"""A tiny service on the kit, used by the delivery-guarantee tests.

Its consumer adds ``value`` of each ``gateway.user.created``-shaped event to a
table; ``login == "poison"`` always fails. Run as a script it serves until
killed: ``python toy.py <nats_url> <db_url> <mode> <ack_wait_s> <name>`` where mode
``kill_after_commit`` SIGKILLs itself after the first commit (before the ack)
and ``kill_in_handler`` SIGKILLs itself inside every handler call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from contracts.events import UserCreated
from servicekit.errors import NotReady, UnprocessableEvent
from servicekit.messaging_tables import add_messaging_tables
from servicekit.router import Router
from servicekit.service import Service
from servicekit.settings import ServiceSettings

metadata = MetaData()
effects = Table(
    "effects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("login", String(100), nullable=False),
)
add_messaging_tables(metadata)


class PoisonError(RuntimeError):
    pass


# logins with these prefixes fail in the handler (tests may change the list)
FAIL_PREFIXES = ["poison"]
# "wait-..." logins are NotReady while WAIT_UNTIL_FREED holds and FREED is not set
WAIT_UNTIL_FREED: list[bool] = []
FREED = asyncio.Event()
# the "fanout" batch consumer's wanted() answer (with_fanout=True): it has work only while
# this holds a True
FANOUT_WANTED: list[bool] = []


def create_toy(nats_url: str, db_url: str, *, mode: str = "normal", max_deliver: int = 3,
               ack_wait_s: float = 30.0, name: str = "toy", with_fanout: bool = False) -> Service:
    router = Router()

    if with_fanout:
        async def fanout_wanted(ctx) -> bool:
            return bool(FANOUT_WANTED and FANOUT_WANTED[-1])

        @router.consume_batch("gateway.user.created", name="fanout", wanted=fanout_wanted)
        async def fanout(items, uow, ctx) -> None:
            for event, _env in items:
                await uow.conn.execute(effects.insert().values(login=f"fanout:{event.login}"))

    @router.consume("gateway.user.created", name="count", backoff_s=(0.05, 0.1, 0.2))
    async def count(event: UserCreated, env, uow, ctx) -> None:
        if mode == "kill_in_handler":
            os.kill(os.getpid(), signal.SIGKILL)
        if event.login.startswith("unprocessable"):
            raise UnprocessableEvent(f"{event.login} can never be applied")
        if event.login.startswith(tuple(FAIL_PREFIXES)):
            raise PoisonError(f"cannot handle {event.login}")
        if event.login.startswith("wait-") and WAIT_UNTIL_FREED and not FREED.is_set():
            raise NotReady(f"{event.login} waits")
        await uow.conn.execute(effects.insert().values(login=event.login))

    svc = Service(ServiceSettings(service_name=name, database_url=db_url, nats_url=nats_url,
                                  environment="test", consumer_max_deliver=max_deliver,
                                  consumer_ack_wait_s=ack_wait_s, log_json=False), metadata,
                  routers=[router])
    if mode == "kill_after_commit":
        # The commit happened; the ack has not been sent yet.
        unit = svc.db.consumer_unit

        @contextlib.asynccontextmanager
        async def unit_then_die():  # type: ignore[no-untyped-def]
            async with unit() as uow:
                yield uow
            os.kill(os.getpid(), signal.SIGKILL)  # committed, not acked

        svc.db.consumer_unit = unit_then_die  # type: ignore[method-assign]
    return svc


async def effect_count(svc: Service, login: str | None = None, *, prefix: str | None = None) -> int:
    q = select(func.count()).select_from(effects)
    if login is not None:
        q = q.where(effects.c.login == login)
    if prefix is not None:
        q = q.where(effects.c.login.startswith(prefix))
    async with svc.engine.connect() as conn:
        return int((await conn.execute(q)).scalar() or 0)


async def create_tables(db_url: str) -> None:
    from servicekit.db import make_engine

    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()


async def _serve(nats_url: str, db_url: str, mode: str, ack_wait_s: float, name: str) -> None:
    svc = create_toy(nats_url, db_url, mode=mode, ack_wait_s=ack_wait_s, max_deliver=3,
                     name=name)
    await svc.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]))

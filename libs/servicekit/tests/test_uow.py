"""The unit of work on real PostgreSQL, and the fake that handler tests use."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from contracts.events import UserCreated
from servicekit.db import make_engine
from servicekit.errors import CommitThen, Conflict
from servicekit.messaging_tables import add_messaging_tables
from servicekit.testing.fakes import FakeDatabase
from servicekit.uow import Database

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True),
               Column("name", String(20)))
outbox, _ = add_messaging_tables(metadata)


def created(login: str) -> UserCreated:
    return UserCreated(user_id=login, login=login, role="worker")


@pytest.fixture
async def db(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    woken: list[int] = []
    database = Database(engine, producer="kit", outbox=outbox)
    database.on_recorded = lambda: woken.append(1)
    database.woken = woken  # type: ignore[attr-defined]
    yield database
    await engine.dispose()


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as r:
        n_things = (await r.conn.execute(select(func.count()).select_from(things))).scalar()
        n_events = (await r.conn.execute(select(func.count()).select_from(outbox))).scalar()
    return n_things, n_events


async def test_changes_and_events_commit_together_and_wake_the_relay_once(db) -> None:
    after: list[str] = []
    async with db.unit_of_work() as uow:
        await uow.conn.execute(things.insert().values(id=1, name="a"))
        uow.record(created("a"))
        uow.record(created("b"))
        uow.after_commit(lambda: after.append("done"))
        assert await counts(db) == (0, 0)  # nothing visible before the commit
    assert await counts(db) == (1, 2)
    assert db.woken == [1] and after == ["done"]


async def test_many_events_are_written_in_order_as_one_event_is(db) -> None:
    """Several events of a unit of work go in as one execution over arrays: the rows hold
    what a single event's INSERT writes (subject, payload, headers, time), in record order."""
    async with db.unit_of_work() as uow:
        one = uow.record(created("solo"))
    async with db.unit_of_work() as uow:
        many = [uow.record(created(f"u{i}")) for i in range(5)]
    async with db.read() as r:
        rows = (await r.conn.execute(select(outbox).order_by(outbox.c.id))).all()
    assert [row.event_id for row in rows] == [e.event_id for e in [one, *many]]
    for row, env in zip(rows, [one, *many], strict=True):
        assert (row.subject, row.payload, row.created_at, row.published_at) == (
            env.type, env.model_dump_json(), env.occurred_at, None)
    assert len({row.headers for row in rows}) == 1


async def test_a_failing_body_rolls_back_the_change_and_its_events(db) -> None:
    after: list[str] = []
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.conn.execute(things.insert().values(id=1, name="a"))
            uow.record(created("a"))
            uow.after_commit(lambda: after.append("done"))
            raise RuntimeError("bug")
    assert await counts(db) == (0, 0)
    assert db.woken == [] and after == []


async def test_flushed_events_let_go_of_memory_but_commit_or_roll_back_with_the_rest(db) -> None:
    async with db.unit_of_work() as uow:
        uow.record(created("a"))
        uow.record(created("b"))
        await uow.flush()
        assert uow.pending == [] and uow.recorded == [] and uow.flushed["gateway.user.created"] == 2
        uow.record(created("c"))
        assert await counts(db) == (0, 0)  # written inside the transaction, not visible yet
    assert await counts(db) == (0, 3)
    assert db.woken == [1]
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            uow.record(created("d"))
            await uow.flush()
            raise RuntimeError("boom")
    assert await counts(db) == (0, 3)


async def test_commit_then_refuse_keeps_the_change_and_raises_the_refusal(db) -> None:
    with pytest.raises(Conflict) as refused:
        async with db.unit_of_work() as uow:
            await uow.conn.execute(things.insert().values(id=1, name="expired"))
            uow.record(created("expired"))
            raise CommitThen(Conflict("assignment_expired", "too late"))
    assert refused.value.code == "assignment_expired"
    assert await counts(db) == (1, 1)
    assert db.woken == [1]  # the relay sees the event at once, not at its next poll


async def test_a_statement_unit_of_work_refuses_record_outside_the_statement(db) -> None:
    async with db.unit_of_work(autocommit=True) as uow:
        with pytest.raises(RuntimeError, match="needs a transaction"):
            uow.record(created("x"))


async def test_the_fake_keeps_the_same_contract() -> None:
    fake = FakeDatabase(store={"n": 0})
    async with fake.unit_of_work() as uow:
        uow.record(created("a"))
    with pytest.raises(RuntimeError):
        async with fake.unit_of_work() as uow:
            uow.record(created("lost"))
            raise RuntimeError("bug")
    with pytest.raises(Conflict):
        async with fake.unit_of_work() as uow:
            uow.record(created("kept"))
            raise CommitThen(Conflict("c", "m"))
    assert [e.data["login"] for e in fake.events] == ["a", "kept"]
    assert fake.commits == 2 and fake.rollbacks == 1


class _FlakyJetStream:
    """Publishes by appending; refuses the subjects in ``failing``."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failing: set[str] = set()

    def jetstream(self, timeout: float) -> _FlakyJetStream:
        return self

    async def publish(self, subject: str, payload: bytes, headers: dict) -> None:
        if headers["Nats-Msg-Id"] in self.failing:
            raise TimeoutError("no PubAck")
        self.sent.append(headers["Nats-Msg-Id"])


async def test_the_relay_marks_only_what_jetstream_acknowledged(db) -> None:
    """A pass takes and marks its rows in one statement and commits after the PubAcks; a
    row whose publish failed is left unpublished for the next pass, in record order."""
    from servicekit.outbox import OutboxRelay

    async with db.unit_of_work() as uow:
        envs = [uow.record(created(f"r{i}")) for i in range(4)]
    js = _FlakyJetStream()
    js.failing = {envs[1].event_id}
    relay = OutboxRelay(service="kit", engine=db.engine, outbox=outbox, nc=js)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await relay.publish_pending()
    assert js.sent == [envs[0].event_id, envs[2].event_id, envs[3].event_id]

    async def unpublished() -> list[str]:
        async with db.read() as r:
            return list((await r.conn.execute(select(outbox.c.event_id).where(
                outbox.c.published_at.is_(None)))).scalars())

    assert await unpublished() == [envs[1].event_id]
    js.failing = set()
    assert await relay.publish_pending() == 1
    assert js.sent[-1] == envs[1].event_id and await unpublished() == []
    assert await relay.publish_pending() == 0 and await relay.publish_pending(probe=True) == 0


async def test_every_way_out_of_a_unit_of_work_gives_its_connection_back(db) -> None:
    """Commit, a failing body, a failing COMMIT and a cancelled unit of work each return
    the connection to the pool; only the commit keeps the change."""
    import asyncio

    from sqlalchemy.exc import IntegrityError

    pool = db.engine.sync_engine.pool
    async with db.unit_of_work() as uow:
        await uow.conn.execute(things.insert().values(id=1, name="kept"))
    assert pool.checkedout() == 0
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            await uow.conn.execute(things.insert().values(id=2, name="gone"))
            raise RuntimeError("bug")
    assert pool.checkedout() == 0
    with pytest.raises(IntegrityError):  # the duplicate key fails inside the transaction
        async with db.unit_of_work() as uow:
            await uow.conn.execute(things.insert().values(id=1, name="twice"))
    assert pool.checkedout() == 0
    inside = asyncio.Event()

    async def hangs() -> None:
        async with db.unit_of_work() as uow:
            await uow.conn.execute(things.insert().values(id=3, name="cancelled"))
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(hangs())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.checkedout() == 0
    async with db.read() as r:
        names = list((await r.conn.execute(select(things.c.name).order_by(things.c.id)))
                     .scalars())
    assert names == ["kept"]

"""The kit's metrics the alerts and dashboards use: series at 0 from the start, events
counted by type once committed (docs/ops-code-needs.md section 5)."""

from __future__ import annotations

import sys
from pathlib import Path

import nats
import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import MetaData

from contracts.envelope import new_envelope
from contracts.events import UserCreated
from contracts.rpc import RpcRequest, RpcSpec
from servicekit.db import make_engine
from servicekit.errors import CommitThen, Conflict
from servicekit.messaging_tables import add_messaging_tables
from servicekit.rpc import RpcServer
from servicekit.uow import Database

sys.path.insert(0, str(Path(__file__).parent))
from toy import create_tables, create_toy

metadata = MetaData()
outbox, _ = add_messaging_tables(metadata)


class Ping(RpcRequest):
    pass


class Pong(BaseModel):
    pass


SPEC = RpcSpec("rpc.kitzero.ping", Ping, Pong, "test ping", frozenset({"worker"}))


async def handler(_req: Ping) -> Pong:
    return Pong()


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def created(login: str) -> UserCreated:
    return UserCreated(user_id=login, login=login, role="worker")


async def test_a_started_service_has_its_consumer_and_outbox_series_at_zero(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyzero")
    assert sample("servicekit_events_consumed_total", service="toyzero", consumer="count",
                  outcome="ok") is None  # nothing before the start
    await svc.start()
    try:
        for outcome in ("ok", "duplicate", "retry", "dead_lettered"):
            assert sample("servicekit_events_consumed_total", service="toyzero",
                          consumer="count", outcome=outcome) == 0, outcome
        for source in ("handler_error", "unprocessable", "max_deliveries_advisory"):
            assert sample("servicekit_dead_lettered_total", service="toyzero",
                          consumer="count", source=source) == 0, source
        assert sample("servicekit_outbox_published_total", service="toyzero") == 0
        assert sample("servicekit_outbox_publish_errors_total", service="toyzero") == 0
        # set before the relay's first pass, not five seconds later
        assert sample("servicekit_outbox_backlog", service="toyzero") == 0
        assert sample("servicekit_outbox_lag_seconds", service="toyzero") == 0
    finally:
        await svc.stop()


async def test_an_rpc_has_both_outcomes_at_zero_before_its_first_request(own_nats) -> None:
    nc = await nats.connect(own_nats.url)
    server = RpcServer(service="kitzero", nc=nc)
    try:
        assert sample("servicekit_rpc_requests_total", service="kitzero", rpc=SPEC.subject,
                      outcome="error") is None
        await server.serve(SPEC, handler)
        for outcome in ("ok", "error"):
            assert sample("servicekit_rpc_requests_total", service="kitzero",
                          rpc=SPEC.subject, outcome=outcome) == 0
    finally:
        await server.stop()
        await nc.close()


@pytest.fixture
async def db(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Database(engine, producer="kitcount", outbox=outbox)
    await engine.dispose()


def recorded(type_: str = "gateway.user.created") -> float:
    return sample("servicekit_events_recorded_total", service="kitcount", type=type_) or 0.0


async def test_events_are_counted_by_type_once_committed_and_not_when_rolled_back(db) -> None:
    before = recorded()
    async with db.unit_of_work() as uow:
        uow.record(created("a"))
        uow.record(created("b"))
        assert recorded() == before  # not before the commit
    assert recorded() == before + 2
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as uow:
            uow.record(created("c"))
            raise RuntimeError("rolled back")
    assert recorded() == before + 2
    with pytest.raises(Conflict):
        async with db.unit_of_work() as uow:  # commit, then refuse: the event went out
            uow.record(created("d"))
            raise CommitThen(Conflict("late", "too late"))
    assert recorded() == before + 3


async def test_a_statement_event_counts_only_if_the_statement_wrote_it(db) -> None:
    before = recorded()
    async with db.unit_of_work(autocommit=True) as uow:
        env, _ = uow.outbox_params(created("e"))
        uow.recorded.remove(env)  # as callers do when their statement matched nothing
    assert recorded() == before
    async with db.consumer_unit() as uow:
        uow.record(created("f"), cause=new_envelope(created("x"), producer="t"))
    assert recorded() == before + 1


def test_uvicorn_logs_through_the_root_handler_in_one_json_format() -> None:
    """uvicorn configured as the kit runs it installs no handler of its own (no coloured
    plain lines between the JSON ones)."""
    import io
    import json
    import logging

    import uvicorn

    from servicekit.observability import JsonFormatter, route_to_root, uvicorn_log_options

    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        route_to_root(name)  # what setup_logging did, before uvicorn starts
    uvicorn.Config(lambda *_: None, **uvicorn_log_options()).configure_logging()
    err = logging.getLogger("uvicorn.error")
    assert err.handlers == [] and err.propagate
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter("kit"))
    logging.getLogger().addHandler(handler)
    try:
        err.warning("port %d in use", 8100)
    finally:
        logging.getLogger().removeHandler(handler)
    line = json.loads(buf.getvalue())
    assert line["logger"] == "uvicorn.error" and line["msg"] == "port 8100 in use"


async def test_diagnostics_answer_in_time_when_a_check_hangs(own_nats, database_url) -> None:
    """Every check of a service's diagnostics at once, each with its own limit: a hung
    database costs one limit, and the reply names what did not answer."""
    import asyncio
    import time

    from servicekit.service import DIAGNOSTICS_CHECK_S

    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyhung")
    await svc.start()
    try:
        healthy = await svc.diagnostics()
        assert healthy.database == "ok" and healthy.details == {}
        assert [c.consumer for c in healthy.consumers] == ["toyhung__count"]

        async def hang(*_args: object) -> None:
            await asyncio.sleep(30)

        svc.readiness = hang  # type: ignore[method-assign,assignment]
        assert svc.relay is not None
        svc.relay.backlog = hang  # type: ignore[method-assign,assignment]
        t0 = time.perf_counter()
        report = await svc.diagnostics()
        assert time.perf_counter() - t0 < DIAGNOSTICS_CHECK_S + 0.4
        assert report.database == "error: no answer" and report.bus == "ok"
        assert report.outbox_backlog == -1 and set(report.details) == {"readiness", "outbox"}
        assert [c.consumer for c in report.consumers] == ["toyhung__count"]  # still read
    finally:
        await svc.stop()


async def test_a_bus_outage_is_logged_at_warning_without_a_traceback(
        own_nats, database_url, caplog) -> None:
    import asyncio
    import logging

    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyoutage")
    await svc.start()
    try:
        caplog.set_level(logging.INFO)
        own_nats.stop()
        await asyncio.sleep(1.5)  # a few failed reconnect attempts
        own_nats.start()
        assert svc.nc is not None
        for _ in range(100):
            if svc.nc.is_connected:
                break
            await asyncio.sleep(0.1)
        assert svc.nc.is_connected
        bus = [r for r in caplog.records if r.name in ("nats", "nats.aio.client",
                                                       "servicekit.nats")]
        assert any("reconnected" in r.getMessage() for r in bus)
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in bus), [
            (r.name, r.levelname, r.getMessage()) for r in bus]
    finally:
        await svc.stop()

"""Delivery guarantees of the kit, against a real nats-server and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig

from contracts.envelope import new_envelope
from contracts.events import UserCreated
from servicekit.testing import NatsServer

sys.path.insert(0, str(Path(__file__).parent))
from toy import create_tables, create_toy, effect_count

TOY = Path(__file__).parent / "toy.py"


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    return await predicate()


def user_created(login: str) -> UserCreated:
    return UserCreated(user_id=f"id-{login}", login=login, role="worker")


async def publish(js, event, *, msg_id: str | None = None) -> str:
    env = new_envelope(event, producer="test")
    await js.publish(env.type, env.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": msg_id or env.event_id})
    return env.model_dump_json()


async def stream_messages(js, stream: str, subject: str) -> list:
    sub = await js.pull_subscribe(subject, stream=stream,
                                  config=ConsumerConfig(inactive_threshold=5.0))
    out = []
    try:
        while True:
            msgs = await sub.fetch(100, timeout=0.5)
            out.extend(msgs)
    except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either at the end
        pass
    finally:
        await sub.unsubscribe()
    return out


async def test_event_committed_while_nats_is_down_is_published_once_after(
        tmp_path, database_url) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    await create_tables(database_url)
    svc = create_toy(server.url, database_url, name="toyoutage")
    await svc.start()
    try:
        server.stop()
        async with svc.db.unit_of_work() as uow:
            env = uow.record(user_created("during-outage"))
        await asyncio.sleep(1.0)  # the relay tries and fails while NATS is down
        assert (await svc.relay.backlog())[0] == 1
        server.start()

        async def drained():
            return (await svc.relay.backlog())[0] == 0

        assert await wait_for(drained, timeout=20)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        msgs = await stream_messages(js, "GATEWAY", "gateway.user.created")
        ids = [m.headers.get("Nats-Msg-Id") for m in msgs]
        assert ids.count(env.event_id) == 1
        # the toy's own consumer applied it exactly once as well
        assert await wait_for(lambda: _eq(effect_count(svc, "during-outage"), 1))
        await nc.close()
    finally:
        await svc.stop()
        server.stop()


async def _eq(coro, expected):
    return (await coro) == expected


async def test_redelivered_event_changes_nothing(own_nats, database_url) -> None:
    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyredeliver")
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        event = user_created("redelivered")
        env = new_envelope(event, producer="test")
        # The same envelope arrives 5 times, past the stream's dedup (new message ids),
        # as it would after a publisher crash outside the duplicate window.
        for i in range(5):
            await js.publish(env.type, env.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": f"{env.event_id}-{i}"})
        info = None
        for _ in range(100):
            info = await js.consumer_info("GATEWAY", "toyredeliver__count")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.05)
        assert info is not None and info.num_ack_pending == 0
        assert await effect_count(svc, "redelivered") == 1
    finally:
        await nc.close()
        await svc.stop()


async def test_failing_handler_dead_letters_with_reason_while_others_flow(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toydlq", max_deliver=3)
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        await publish(js, user_created("poison-1"))
        for i in range(5):
            await publish(js, user_created(f"fine-{i}"))

        async def all_fine():
            return await effect_count(svc, prefix="fine-") == 5

        assert await wait_for(all_fine)

        async def dead():
            return await stream_messages(js, "DLQ", "dlq.toydlq.count")

        msgs = await wait_for(dead, timeout=15)
        assert len(msgs) == 1
        h = msgs[0].headers
        assert h["Dlq-Reason"] == "handler_error"
        assert h["Dlq-Error-Type"] == "PoisonError"
        assert "poison-1" in h["Dlq-Error-Message"]
        assert h["Dlq-Consumer"] == "toydlq__count"
        assert h["Dlq-Original-Subject"] == "gateway.user.created"
        assert int(h["Dlq-Stream-Seq"]) > 0
        assert h["Dlq-Deliveries"] == "3"
        assert b"poison-1" in msgs[0].data
        info = await js.consumer_info("GATEWAY", "toydlq__count")
        assert info.num_ack_pending == 0
    finally:
        await nc.close()
        await svc.stop()


def _spawn(nats_url: str, db_url: str, mode: str, ack_wait: float,
           name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(TOY), nats_url, db_url, mode, str(ack_wait),
                             name],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc


async def test_sigkill_between_commit_and_ack_applies_effect_once(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    proc = _spawn(own_nats.url, database_url, "kill_after_commit", 1.0, "toykill")
    assert proc.stdout is not None
    line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
    assert line.strip() == b"ready"
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    await publish(js, user_created("killed-after-commit"))
    rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 20)
    assert rc == -9, "the consumer process must have been SIGKILLed"
    # The effect is committed but the message was never acked: JetStream redelivers it
    # (ack_wait 1 s) to the restarted consumer, whose inbox makes it a no-op.
    svc = create_toy(own_nats.url, database_url, ack_wait_s=1.0, name="toykill")
    assert await effect_count(svc, "killed-after-commit") == 1
    await svc.start()
    try:
        async def settled():
            info = await js.consumer_info("GATEWAY", "toykill__count")
            return info.num_ack_pending == 0 and info.num_pending == 0

        assert await wait_for(settled, timeout=15)
        assert await effect_count(svc, "killed-after-commit") == 1
    finally:
        await svc.stop()
        await nc.close()


async def test_crash_looping_consumer_message_reaches_dlq_via_advisory(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    # A consumer that dies inside its handler every time: no handler error is ever recorded.
    env_json = None
    for _ in range(3):
        proc = _spawn(own_nats.url, database_url, "kill_in_handler", 1.0, "toyloop")
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        assert line.strip() == b"ready"
        if env_json is None:
            env_json = await publish(js, user_created("crash-loop"))
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 20)
        assert rc == -9
        await asyncio.sleep(1.2)  # let ack_wait pass so the next start gets a redelivery
    # A healthy replica of the service starts: its advisory forwarder finds the advisory
    # kept in the ADVISORIES stream and dead-letters the message.
    svc = create_toy(own_nats.url, database_url, ack_wait_s=1.0, name="toyloop")
    await svc.start()
    try:
        async def dead():
            return await stream_messages(js, "DLQ", "dlq.toyloop.count")

        crash = await wait_for(dead, timeout=15)
        assert len(crash) == 1
        assert b"crash-loop" in crash[0].data
        assert crash[0].headers["Dlq-Reason"] == "max_deliveries_exceeded"
        assert crash[0].headers["Dlq-Error-Type"] == "NoHandlerError"
        assert crash[0].headers["Dlq-Consumer"] == "toyloop__count"
        assert await effect_count(svc, "crash-loop") == 0
    finally:
        await svc.stop()
        await nc.close()


async def test_consumer_settings_in_code_are_applied_to_an_existing_consumer(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    first = create_toy(own_nats.url, database_url, name="toycfg", max_deliver=3, ack_wait_s=5)
    await first.start()
    await first.stop()
    second = create_toy(own_nats.url, database_url, name="toycfg", max_deliver=7, ack_wait_s=9)
    await second.start()
    nc = await nats.connect(own_nats.url)
    try:
        info = await nc.jetstream().consumer_info("GATEWAY", "toycfg__count")
        assert info.config.max_deliver == 7
        assert info.config.ack_wait == 9
    finally:
        await nc.close()
        await second.stop()


async def test_dead_letter_replay_applies_the_event_once_the_cause_is_fixed(
        own_nats, database_url) -> None:
    import toy

    from servicekit.dlq import list_dead_letters, replay

    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyreplay", max_deliver=2)
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    await svc.start()
    toy.FAIL_PREFIXES.append("flaky-")
    try:
        await publish(js, user_created("flaky-1"))

        async def dead():
            return await list_dead_letters(js)

        rows = await wait_for(dead, timeout=15)
        assert len(rows) == 1 and rows[0]["headers"]["Dlq-Consumer"] == "toyreplay__count"
        assert await effect_count(svc, "flaky-1") == 0
        toy.FAIL_PREFIXES.remove("flaky-")  # the cause is fixed
        assert await replay(js, rows[0]["seq"]) == "gateway.user.created"
        assert await list_dead_letters(js) == []
        assert await wait_for(lambda: _eq(effect_count(svc, "flaky-1"), 1))
    finally:
        if "flaky-" in toy.FAIL_PREFIXES:
            toy.FAIL_PREFIXES.remove("flaky-")
        await svc.stop()
        await nc.close()


async def test_unprocessable_event_is_dead_lettered_at_once(own_nats, database_url) -> None:
    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyperm", max_deliver=5)
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        await publish(js, user_created("unprocessable-1"))

        async def dead():
            return await stream_messages(js, "DLQ", "dlq.toyperm.count")

        msgs = await wait_for(dead, timeout=10)
        assert len(msgs) == 1
        assert msgs[0].headers["Dlq-Reason"] == "unprocessable"
        assert msgs[0].headers["Dlq-Deliveries"] == "1"  # no retries for bad data
    finally:
        await nc.close()
        await svc.stop()


async def test_published_event_keeps_the_traceparent_of_the_request(own_nats,
                                                                    database_url) -> None:

    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toytrace")
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        tracer = svc.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("POST /api/something") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with svc.db.unit_of_work() as uow:
                env = uow.record(user_created("traced"))

        async def published():
            msgs = await stream_messages(nc.jetstream(), "GATEWAY", "gateway.user.created")
            return [m for m in msgs if m.headers.get("Nats-Msg-Id") == env.event_id]

        (msg,) = await wait_for(published)
        assert msg.headers["traceparent"].split("-")[1] == trace_id
    finally:
        await nc.close()
        await svc.stop()


async def test_a_message_that_must_wait_is_kept_in_progress_and_never_dead_lettered(
        own_nats, database_url) -> None:
    """Waiting (here ``NotReady``; a lock timeout alike) outlasts max_deliver x ack_wait:
    the message is neither redelivered nor dead-lettered, and applies once freed."""
    import toy

    await create_tables(database_url)
    toy.WAIT_UNTIL_FREED.append(True)
    toy.FREED.clear()
    svc = create_toy(own_nats.url, database_url, name="toywait", max_deliver=2, ack_wait_s=2.0)
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        await publish(js, user_created("wait-1"))
        await asyncio.sleep(8.0)  # 2 deliveries x 2 s ack wait, twice over
        info = await js.consumer_info("GATEWAY", "toywait__count")
        assert info.num_redelivered == 0 and info.num_ack_pending == 1
        assert await stream_messages(js, "DLQ", "dlq.toywait.count") == []
        toy.FREED.set()
        assert await wait_for(lambda: _eq(effect_count(svc, "wait-1"), 1))
        assert await stream_messages(js, "DLQ", "dlq.toywait.count") == []
    finally:
        toy.WAIT_UNTIL_FREED.clear()
        await nc.close()
        await svc.stop()


async def test_a_body_on_the_wrong_subject_or_of_an_unknown_version_is_refused_at_once(
        own_nats, database_url) -> None:
    await create_tables(database_url)
    svc = create_toy(own_nats.url, database_url, name="toyforged", max_deliver=5)
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        env = new_envelope(user_created("forged"), producer="test")
        # an envelope typed as another event, published on the consumer's subject
        other = env.model_copy(update={"type": "gateway.emergency.changed"})
        await js.publish("gateway.user.created", other.model_dump_json().encode())
        newer = env.model_copy(update={"schema_version": 99, "event_id": "v99"})
        await js.publish("gateway.user.created", newer.model_dump_json().encode())
        await js.publish("gateway.user.created", b"not json")

        async def dead():
            msgs = await stream_messages(js, "DLQ", "dlq.toyforged.count")
            return msgs if len(msgs) == 3 else None

        msgs = await wait_for(dead, timeout=10)
        assert {m.headers["Dlq-Reason"] for m in msgs} == {"unprocessable"}
        assert {m.headers["Dlq-Deliveries"] for m in msgs} == {"1"}
        messages = " ".join(m.headers["Dlq-Error-Message"] for m in msgs)
        assert "arrived on 'gateway.user.created'" in messages
        assert "unknown event gateway.user.created v99" in messages
        assert await effect_count(svc, "forged") == 0
    finally:
        await nc.close()
        await svc.stop()


async def test_a_waiting_message_holds_up_no_other(own_nats, database_url) -> None:
    import toy

    await create_tables(database_url)
    toy.WAIT_UNTIL_FREED.append(True)
    toy.FREED.clear()
    svc = create_toy(own_nats.url, database_url, name="toypark", ack_wait_s=1.0)
    await svc.start()
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        await publish(js, user_created("wait-first"))
        for i in range(5):
            await publish(js, user_created(f"after-{i}"))
        assert await wait_for(lambda: _eq(effect_count(svc, prefix="after-"), 5))
        assert await effect_count(svc, "wait-first") == 0
        toy.FREED.set()
        assert await wait_for(lambda: _eq(effect_count(svc, "wait-first"), 1))
    finally:
        toy.WAIT_UNTIL_FREED.clear()
        await nc.close()
        await svc.stop()


async def test_a_batch_consumer_with_nothing_wanted_acks_without_a_transaction(
        own_nats, database_url) -> None:
    """wanted() False: acked, no effect and no inbox row (a later event that is wanted is
    applied through the inbox as always)."""
    import toy
    from sqlalchemy import text

    await create_tables(database_url)
    toy.FANOUT_WANTED[:] = [False]
    svc = create_toy(own_nats.url, database_url, name="toywanted", with_fanout=True)
    await svc.start()
    nc = await nats.connect(own_nats.url)

    async def settled() -> bool:
        info = await js.consumer_info("GATEWAY", "toywanted__fanout")
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def inbox_rows() -> int:
        async with svc.engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM inbox WHERE consumer = 'toywanted__fanout'"))).scalar_one())

    try:
        js = nc.jetstream()
        await publish(js, user_created("unwanted"))
        assert await wait_for(lambda: _eq(effect_count(svc, "unwanted"), 1))  # "count" ran
        assert await wait_for(settled)
        assert await effect_count(svc, "fanout:unwanted") == 0
        assert await inbox_rows() == 0
        toy.FANOUT_WANTED.append(True)
        await publish(js, user_created("wanted"))
        assert await wait_for(lambda: _eq(effect_count(svc, "fanout:wanted"), 1))
        assert await wait_for(settled)
        assert await inbox_rows() == 1
    finally:
        toy.FANOUT_WANTED.clear()
        await nc.close()
        await svc.stop()


async def test_a_consumer_of_several_subjects_is_delivered_those_only(
        own_nats, database_url) -> None:
    """A durable declared on several subjects of one stream (here over an existing durable
    that filtered on the whole stream: its filter is updated) gets those subjects' events
    and no other message of the stream."""
    from toy import effects, metadata

    from contracts.events import EmergencyChanged
    from servicekit.router import Router
    from servicekit.service import Service
    from servicekit.settings import ServiceSettings

    await create_tables(database_url)
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    router = Router()

    @router.consume_batch(("gateway.user.created", "gateway.emergency.changed"), name="two")
    async def two(items, uow, ctx) -> None:
        for _event, env in items:
            await uow.conn.execute(effects.insert().values(login=env.type))

    svc = Service(ServiceSettings(service_name="toysubjects", database_url=database_url,
                                  nats_url=own_nats.url, environment="test", log_json=False),
                  metadata, routers=[router])
    try:
        await svc.start()  # the streams exist; the durable as an older version declared it
        await svc.stop()
        await js.add_consumer("GATEWAY", config=ConsumerConfig(
            durable_name="toysubjects__two", filter_subject="gateway.>"))
        await js.publish("gateway.not_for_it", b"{}")  # in the stream, neither subject
        await publish(js, user_created("one"))
        await publish(js, EmergencyChanged(enabled=True, reason="test", by_user_id="u"))
        await svc.start()

        async def applied() -> bool:
            return (await effect_count(svc, prefix="gateway.")) == 2

        assert await wait_for(applied)
        info = await js.consumer_info("GATEWAY", "toysubjects__two")
        assert info.config.filter_subjects == ["gateway.user.created",
                                               "gateway.emergency.changed"]
        assert not info.config.filter_subject
        assert info.num_pending == 0 and info.delivered.consumer_seq == 2  # never the third
        assert await effect_count(svc, "gateway.user.created") == 1
        assert await effect_count(svc, "gateway.emergency.changed") == 1
    finally:
        await nc.close()
        await svc.stop()


def test_a_consumer_s_subjects_must_be_of_one_stream() -> None:
    from servicekit.consumer import EventConsumer

    async def handler(items, uow, ctx) -> None:
        return None

    one = EventConsumer(service="s", name="n", subject=("gateway.user.created",),
                        handler=handler)
    assert one.subject == "gateway.user.created" and one.config().filter_subject == one.subject
    try:
        EventConsumer(service="s", name="n", subject=("gateway.user.created", "task.taken"),
                      handler=handler)
    except ValueError as exc:
        assert "GATEWAY" in str(exc) and "TASK" in str(exc)
    else:
        raise AssertionError("subjects of two streams were accepted")


async def test_a_retired_consumer_is_deleted_when_the_service_starts(
        own_nats, database_url) -> None:
    """A durable an earlier version declared is removed at start (and a start without it on
    the server is no error)."""
    from nats.js.errors import NotFoundError
    from toy import metadata

    from servicekit.router import Router
    from servicekit.service import Service
    from servicekit.settings import ServiceSettings

    await create_tables(database_url)
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    router = Router()
    router.retire("GATEWAY", "old")
    svc = Service(ServiceSettings(service_name="toyretire", database_url=database_url,
                                  nats_url=own_nats.url, environment="test", log_json=False),
                  metadata, routers=[router])
    try:
        await svc.start()  # the streams are made; nothing to retire yet
        await svc.stop()
        await js.add_consumer("GATEWAY", config=ConsumerConfig(
            durable_name="toyretire__old", filter_subject="gateway.>"))
        assert (await js.consumer_info("GATEWAY", "toyretire__old")).name == "toyretire__old"
        await svc.start()
        try:
            await js.consumer_info("GATEWAY", "toyretire__old")
        except NotFoundError:
            pass
        else:
            raise AssertionError("the retired durable is still on the server")
    finally:
        await nc.close()
        await svc.stop()

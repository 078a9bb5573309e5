"""The production NATS configuration (deploy/nats) run for real: a 3-node JetStream cluster
with TLS routes on loopback, each process its own user, and every permission checked by
doing what the code does (the kit's consumer configs, the gateway's emergency bucket) and
what an attacker would (another service's events, RPCs, the JetStream API)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from deploy_helpers import DEPLOY, cli_exists
from nats.errors import NoServersError
from nats.js.api import ConsumerConfig

from contracts.streams import STREAMS
from servicekit.consumer import AdvisoryForwarder
from servicekit.streams import apply_consumer, ensure_streams
from servicekit.testing import eventually

sys.path.insert(0, str(DEPLOY / "nats"))
import render_auth

SERVICES = render_auth.SERVICES
# a subject of each process's own stream, published in the tests
OWN_SUBJECT = {"tasks": "task.taken", "review": "review.accepted", "ledger": "ledger.credited",
               "rules": "rules.skill.set", "support": "support.ticket.created",
               "gateway": "gateway.user.created"}
STREAM_OWNER = {v: k for k, v in render_auth.OWN_STREAM.items()}


@dataclass
class Client:
    user: str
    nc: nats.NATS
    errors: list[str] = field(default_factory=list)

    @property
    def js(self):
        return self.nc.jetstream(timeout=2.0)

    async def refused(self, subject: str, *, what: str = "Publish") -> bool:
        """Whether the server refuses this publish (or subscription) with a permissions
        violation: the message is dropped and the client told so asynchronously."""
        seen = len(self.errors)
        if what == "Publish":
            await self.nc.publish(subject, b"{}")
        else:
            await self.nc.subscribe(subject)
        await self.nc.flush()
        # nats-py lowercases the server's -ERR text
        needle = f'permissions violation for {what.lower()} to "{subject.lower()}"'
        for _ in range(50):
            if any(needle in e.lower() for e in self.errors[seen:]):
                return True
            await asyncio.sleep(0.02)
        return False


def tls_context(cluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.tls / "ca.crt"))


async def connect(cluster, user: str, **kw) -> Client:
    client = Client(user, None)  # type: ignore[arg-type]

    async def on_error(exc: Exception) -> None:
        client.errors.append(str(exc))

    client.nc = await nats.connect(
        cluster.urls(), user=user, password=cluster.passwords[user], tls=tls_context(cluster),
        inbox_prefix=render_auth.inbox(user), error_cb=on_error, allow_reconnect=False,
        connect_timeout=3, **kw)
    return client


def service_consumers(service: str):
    return render_auth.build(service).consumers


@pytest.fixture(scope="module")
async def bus(nats_cluster):
    """The cluster after bus-setup: every stream and the emergency bucket at R3, created by
    the provisioner with the kit's own declarations."""
    prov = await connect(nats_cluster, "provisioner")
    await ensure_streams(prov.js, replicas=3)
    await prov.js.create_key_value(bucket=render_auth.EMERGENCY_BUCKET, history=16, replicas=3)
    await prov.nc.close()
    clients: dict[str, Client] = {}

    async def client(user: str) -> Client:
        # a new one where a test killed the node the old one was on (no reconnects here)
        if user not in clients or not clients[user].nc.is_connected:
            clients[user] = await connect(nats_cluster, user)
        return clients[user]

    yield client
    for c in clients.values():
        await c.nc.close()


def test_auth_conf_is_rendered_from_the_code() -> None:
    committed = (DEPLOY / "nats" / "auth.conf").read_text()
    logging.disable(logging.INFO)
    try:
        rendered = render_auth.render()
    finally:
        logging.disable(logging.NOTSET)
    assert committed == rendered, ("deploy/nats/auth.conf is stale: run "
                                   ".venv/bin/python deploy/nats/render_auth.py > "
                                   "deploy/nats/auth.conf")


def test_nats_conf_fsyncs_every_write() -> None:
    text = (DEPLOY / "nats" / "nats.conf").read_text()
    assert "sync_interval: always" in text
    assert "verify: true" in text.split("cluster {", 1)[1]  # routes need a client certificate


async def test_streams_and_the_emergency_bucket_are_replicated_three_times(bus) -> None:
    ops = await bus("ops")
    for name in [s.name for s in STREAMS] + [f"KV_{render_auth.EMERGENCY_BUCKET}"]:
        info = await ops.js.stream_info(name)
        assert info.config.num_replicas == 3, name
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2, name


async def test_each_service_creates_and_drains_only_its_own_consumers(bus) -> None:
    for service in SERVICES:
        me = await bus(service)
        consumers = service_consumers(service)
        for c in consumers:
            await apply_consumer(me.js, c.stream, c.config())  # the kit's own call
            producer = await bus(STREAM_OWNER[c.stream])
            subject = c.subjects[0].replace(">", "test").replace("*", "test")
            await producer.js.publish(subject, b"{}")
            sub = await me.js.pull_subscribe_bind(durable=c.durable, stream=c.stream)
            [msg] = await sub.fetch(1, timeout=3)
            await msg.ack_sync()
            info = await me.js.consumer_info(c.stream, c.durable)
            assert info.num_ack_pending == 0, c.durable
        fwd = AdvisoryForwarder(service=service, consumers=consumers, js=me.js)
        await apply_consumer(me.js, render_auth.ADVISORY_STREAM, fwd.config())
        # a durable of an earlier version, left on the server: the service deletes it
        for stream, name in render_auth.build(service).router.retired:
            old = ConsumerConfig(durable_name=f"{service}__{name}")
            await (await bus("provisioner")).js.add_consumer(stream, config=old)
            assert await me.js.delete_consumer(stream, f"{service}__{name}")
        assert not me.errors, me.errors


async def test_a_service_publishes_only_its_own_events_and_dead_letters(bus) -> None:
    for user in (*SERVICES, "gateway"):
        me = await bus(user)
        ack = await me.js.publish(OWN_SUBJECT[user], b"{}")
        assert ack.seq > 0
        await me.js.publish(f"dlq.{user}.some-consumer", b"{}")
        for other, subject in OWN_SUBJECT.items():
            if other != user:
                assert await me.refused(subject), f"{user} may publish {subject}"
        other = "ledger" if user != "ledger" else "tasks"
        assert await me.refused(f"dlq.{other}.x"), f"{user} may dead-letter for {other}"


async def test_only_the_gateway_sends_rpcs_and_replies_reach_only_the_caller(bus) -> None:
    tasks, gateway, ledger = await bus("tasks"), await bus("gateway"), await bus("ledger")

    async def answer(msg) -> None:
        await msg.respond(b'{"ok":true}')

    sub = await tasks.nc.subscribe("rpc.tasks.>", queue="tasks", cb=answer)
    await tasks.nc.flush()
    for _ in range(40):  # the subscription reaches the other nodes over the routes
        try:
            reply = await gateway.nc.request("rpc.tasks.ping", b"{}", timeout=2)
            break
        except nats.errors.NoRespondersError:
            await asyncio.sleep(0.05)
    assert reply.data == b'{"ok":true}'
    # the forgeries of issue 11: an RPC with an admin actor from anything but the gateway
    for forger in (tasks, ledger):
        assert await forger.refused("rpc.ledger.approve_payout")
        assert await forger.refused("rpc.ledger.set_share")
    # a service answers requests it received, never an inbox of its choosing
    assert await tasks.refused(f"{render_auth.inbox('gateway')}.forged")
    await sub.unsubscribe()


async def test_nobody_reads_another_process_replies_or_events(bus) -> None:
    tasks = await bus("tasks")
    for subject in ("_INBOX.>", f"{render_auth.inbox('gateway')}.>", "ledger.>", "rpc.ledger.>"):
        assert await tasks.refused(subject, what="Subscription"), subject


async def test_jetstream_api_is_limited_to_own_consumers(bus) -> None:
    tasks = await bus("tasks")
    info = await tasks.js.stream_info("LEDGER")  # reading is allowed (diagnostics)
    assert info.config.name == "LEDGER"
    for subject in ("$JS.API.STREAM.DELETE.LEDGER", "$JS.API.STREAM.PURGE.DLQ",
                    "$JS.API.STREAM.UPDATE.REVIEW", "$JS.API.STREAM.CREATE.EVIL",
                    "$JS.API.STREAM.MSG.DELETE.DLQ",
                    # stealing the ledger's credits by pulling from its durable
                    "$JS.API.CONSUMER.CREATE.REVIEW.ledger__credit-accepted",
                    "$JS.API.CONSUMER.MSG.NEXT.REVIEW.ledger__credit-accepted",
                    "$JS.API.CONSUMER.DELETE.REVIEW.tasks__review-accepted",
                    # switching the platform's emergency mode
                    f"$KV.{render_auth.EMERGENCY_BUCKET}.state"):
        assert await tasks.refused(subject), subject


async def test_gateway_emergency_mode_works_with_its_own_permissions(bus, nats_cluster) -> None:
    from gateway_service.emergency import Emergency

    first, second = await bus("gateway"), await connect(nats_cluster, "gateway")
    seen = len(first.errors)
    a, b = Emergency(render_auth.EMERGENCY_BUCKET), Emergency(render_auth.EMERGENCY_BUCKET)
    await a.start(first.nc)
    await b.start(second.nc)
    try:
        await a.set(enabled=True, reason="deploy test", by_user_id="ops")
        for _ in range(100):
            if b.enabled:
                break
            await asyncio.sleep(0.05)
        assert b.enabled, "the other replica did not see the switch"
        await a.set(enabled=False, reason="", by_user_id="ops")
    finally:
        await a.stop()
        await b.stop()
        await second.nc.close()
    refused = [e for e in first.errors[seen:] + second.errors
               if "permissions violation" in e.lower()]  # not TLS close-notify noise
    assert not refused, refused
    # session invalidations between replicas (core NATS)
    got: list[bytes] = []

    async def on_change(msg) -> None:
        got.append(msg.data)

    sub = await first.nc.subscribe("gateway.sessions.changed", cb=on_change)
    await first.nc.publish("gateway.sessions.changed", b'{"user_id":"u"}')
    await first.nc.flush()
    await asyncio.sleep(0.1)
    assert got == [b'{"user_id":"u"}']
    await sub.unsubscribe()


async def test_clients_need_tls_and_a_password(nats_cluster) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(nats_cluster.urls(), tls=tls_context(nats_cluster),
                           allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect([u.replace("tls://", "nats://") for u in nats_cluster.urls()],
                           user="tasks", password=nats_cluster.passwords["tasks"],
                           allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(nats_cluster.urls(), user="tasks", password="wrong",
                           tls=tls_context(nats_cluster), allow_reconnect=False,
                           connect_timeout=2, max_reconnect_attempts=0)


def test_routes_refuse_a_peer_without_a_certificate(nats_cluster) -> None:
    """A route is a full peer of the cluster: it must show a certificate of the cluster's CA
    (mutual TLS, TLS first). With the node certificate the route answers INFO; without
    one the handshake is refused."""
    port = nats_cluster.nodes[0].route_port

    def handshake(with_cert: bool) -> bytes:
        ctx = tls_context(nats_cluster)
        if with_cert:
            ctx.load_cert_chain(str(nats_cluster.tls / "tls.crt"),
                                str(nats_cluster.tls / "tls.key"))
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname="nats-0.nats") as tls:
                tls.sendall(b"PING\r\n")
                return tls.recv(64)

    assert handshake(True).startswith(b"INFO ")
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        handshake(False)


@pytest.mark.skipif(not cli_exists("servicekit.streams"),
                    reason="pending: python -m servicekit.streams (docs/ops-code-needs.md 4)")
async def test_bus_setup_command_creates_the_bus_at_r3_as_the_provisioner(
        nats_cluster, tmp_path_factory) -> None:
    """The bus-setup command exactly as compose renders it, against a fresh cluster."""
    import os
    import subprocess

    import yaml

    setup = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["bus-setup"]
    env = {**os.environ, "NATS_URL": ",".join(nats_cluster.urls()),
           "NATS_USER": "provisioner", "NATS_PASSWORD": nats_cluster.passwords["provisioner"],
           "NATS_TLS_CA_FILE": str(nats_cluster.tls / "ca.crt"),
           "NATS_INBOX_PREFIX": setup["environment"]["NATS_INBOX_PREFIX"]}
    got = subprocess.run([sys.executable, *setup["command"][1:]], env=env,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    ops = await connect(nats_cluster, "ops")
    try:
        for name in [s.name for s in STREAMS] + [f"KV_{render_auth.EMERGENCY_BUCKET}"]:
            assert (await ops.js.stream_info(name)).config.num_replicas == 3, name
    finally:
        await ops.nc.close()


async def test_diagnostics_see_quorum_leaders_and_the_meta_group_as_the_gateway(
        bus, nats_cluster) -> None:
    """The gateway's diagnostics of the bus, with the gateway's own permissions, on the
    production cluster: quorum, every stream's leader and replicas, the meta leader from the
    nodes' /jsz (GATEWAY_NATS_MONITOR_URLS), and the scatter ping allowed."""
    from gateway_service.routes import diagnostics as diag

    gw = await bus("gateway")
    monitors = [f"http://127.0.0.1:{n.http_port}" for n in nats_cluster.nodes]
    health = await diag._bus_health(gw.nc, monitors)
    js = health.jetstream
    assert js is not None and js.quorum and js.clustered, (health.error, js)
    names = {n.name for n in nats_cluster.nodes}
    assert js.cluster_size == 3 and js.meta_leader in names
    assert {p.name for p in js.peers} == names and all(p.current for p in js.peers)
    assert {s.name for s in health.streams} == {s.name for s in STREAMS}
    for st in health.streams:
        assert st.replicas == 3 and st.leader in names and st.lagging_replicas == [], st
    assert health.status == "ok", health.error
    from contracts.rpc import ops

    errors = len(gw.errors)
    assert await diag._replicas_seen(gw.nc, ("tasks",)) == {"tasks": []}  # nobody answers
    # a replica may listen for the scatter ping and answer it, and the gateway send it
    tasks = await bus("tasks")

    async def pong(msg) -> None:
        await msg.respond(ops.Pong(service="tasks", instance="tasks-0").model_dump_json()
                          .encode())

    sub = await tasks.nc.subscribe(ops.ping_subject("tasks"), cb=pong)
    await tasks.nc.flush()
    try:
        got = await diag._replicas_seen(gw.nc, ("tasks",))
        assert got == {"tasks": ["tasks-0"]}, (tasks.errors[-3:], gw.errors[-3:])
    finally:
        await sub.unsubscribe()
    assert gw.errors[errors:] == []


@pytest.mark.timeout(200)  # tries begun within 60 s (over by 80 s), a restart, 30 s to catch up
async def test_a_new_gateway_starts_with_the_emergency_buckets_leader_killed(
        bus, nats_cluster) -> None:
    """The node leading the emergency bucket's replicas is killed: the bucket (R3) elects a
    new leader, and a gateway starting now opens it, reads the state and can switch it."""
    import os
    import subprocess

    from conftest import wait_healthy

    from gateway_service.emergency import Emergency
    from servicekit.testing.natsserver import nats_server_binary

    ops = await bus("ops")
    info = await ops.js.stream_info(f"KV_{render_auth.EMERGENCY_BUCKET}")
    assert info.cluster is not None and info.cluster.leader
    [leader] = [n for n in nats_cluster.nodes if n.name == info.cluster.leader]
    assert leader.proc is not None
    leader.proc.kill()
    leader.proc.wait()
    try:
        others = [n.url for n in nats_cluster.nodes if n is not leader]
        nc = await nats.connect(others, user="gateway", password=nats_cluster.passwords["gateway"],
                                tls=tls_context(nats_cluster),
                                inbox_prefix=render_auth.inbox("gateway"), connect_timeout=3)
        fresh = Emergency(render_auth.EMERGENCY_BUCKET)
        try:
            # The replicas elect a new leader within seconds. Each try is bounded, and so are
            # all of them together, well inside the test's own timeout, so that a slow
            # election fails here with what each try met, not as a timeout with no reason.
            failures: list[str] = []

            async def switched() -> dict[str, Any] | None:
                try:
                    await asyncio.wait_for(fresh.start(nc), timeout=10.0)
                    return await asyncio.wait_for(
                        fresh.set(enabled=False, reason="", by_user_id="ops"), timeout=10.0)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    await fresh.stop()
                    return None

            try:
                await eventually(switched, timeout_s=60.0, interval_s=0.5)
            except AssertionError as exc:
                raise AssertionError(f"no gateway could start: {failures[-5:]}") from exc
            assert fresh.enabled is False
        finally:
            await fresh.stop()
            await nc.close()
    finally:  # the node comes back for the tests after this one
        env = {**os.environ, "NATS_SERVER_NAME": leader.name,
               **{f"NATS_{u.upper()}_PASSWORD": p for u, p in nats_cluster.passwords.items()}}
        leader.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(leader.conf),
             "-l", str(leader.conf.with_suffix(".log"))],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_healthy(leader)
        await _caught_up(await bus("ops"))


async def _caught_up(ops: Client, timeout_s: float = 30.0) -> None:
    """Wait (at most ``timeout_s``) until every stream has its three replicas current again,
    so the next test starts from a whole cluster. Each look is bounded: a JetStream API that
    does not answer for a moment costs two seconds, not the test's whole timeout."""
    js = ops.nc.jetstream(timeout=2.0)
    names = [s.name for s in STREAMS] + [f"KV_{render_auth.EMERGENCY_BUCKET}"]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            infos = [await js.stream_info(n) for n in names]
        except Exception:  # not answering yet: look again
            infos = []
        if infos and all(i.cluster and i.cluster.replicas and len(i.cluster.replicas) == 2
                         and all(r.current for r in i.cluster.replicas) for i in infos):
            return
        await asyncio.sleep(0.2)


async def test_diagnostics_report_lost_quorum_within_two_seconds(bus, nats_cluster) -> None:
    """Two of three nodes killed (the last test of this module: the cluster does not come
    back): the gateway's bus report answers within 2 s and says JetStream has no quorum."""
    import time

    from gateway_service.routes import diagnostics as diag

    first = nats_cluster.nodes[0]
    gw = await nats.connect([first.url], user="gateway",
                            password=nats_cluster.passwords["gateway"],
                            tls=tls_context(nats_cluster),
                            inbox_prefix=render_auth.inbox("gateway"),
                            allow_reconnect=False, connect_timeout=3)
    try:
        for node in nats_cluster.nodes[1:]:
            assert node.proc is not None
            node.proc.kill()
            node.proc.wait()
        monitors = [f"http://127.0.0.1:{n.http_port}" for n in nats_cluster.nodes]
        # the survivor needs a moment to notice (a leader hears nothing from its peers);
        # every report answers within 2 s meanwhile
        deadline, health = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            health = await diag._bus_health(gw, monitors)
            assert time.perf_counter() - t0 < 2.0
            if health.jetstream is not None and not health.jetstream.quorum:
                break
            await asyncio.sleep(0.5)
        assert health is not None
        js = health.jetstream
        assert js is not None and js.quorum is False, js
        assert health.status == "down" and "no quorum" in (health.error or "")
    finally:
        await gw.close()

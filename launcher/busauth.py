"""Who may do what on the bus: one NATS user per process, least-privilege permissions.

Everything comes from the code, so the permissions follow it: a service's own event
subjects from ``contracts.streams``, its durable consumers from the service itself
(``create_service().consumers``), its RPC subjects from ``rpc.<service>.>``, the subjects
the gateway's live stream listens to from ``gateway_service.routes.live``. Three places use
the same table:

* ``make run`` (launcher.stack): passwords generated at the first start and kept in
  ``<data>/nats/credentials.json`` (mode 0600);
* the test harness (tests/conftest.py): fresh passwords per run;
* ``deploy/nats/auth.conf`` (deploy/nats/render_auth.py): passwords are variables
  (``$NATS_<USER>_PASSWORD``) the servers read from their environment (a Secret).

So what an attacker could do on an open bus (publish ``review.accepted`` for a submission
that does not exist and be credited, call ``rpc.ledger.approve_payout`` claiming to be an
admin) is refused by nats-server: only the reviewing service publishes review events, and
only the gateway publishes RPC requests, so an RPC's actor is believed because only the
gateway can send one (docs/decisions.md 25).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.streams import DLQ_SUBJECT_PREFIX, STREAMS
from servicekit.consumer import AdvisoryForwarder

SERVICES = ("tasks", "review", "ledger", "rules", "support")
USERS = (*SERVICES, "gateway", "provisioner", "ops")
# which stream holds the events a process publishes (its outbox relay's subjects)
OWN_STREAM = {"tasks": "TASK", "review": "REVIEW", "ledger": "LEDGER", "rules": "RULES",
              "support": "SUPPORT", "gateway": "GATEWAY"}
EMERGENCY_BUCKET = "gateway_emergency"  # GatewaySettings.emergency_bucket
ADVISORY_STREAM = "ADVISORIES"
API = "$JS.API"
KV = f"KV_{EMERGENCY_BUCKET}"


@dataclass(frozen=True)
class Permissions:
    publish: list[str]
    subscribe: list[str]
    responses: bool  # may answer requests it received (RPC replies), nothing else


def inbox(user: str) -> str:
    """Each process gets its own reply-inbox prefix, so nobody can read another's replies."""
    return f"_INBOX_{user}"


def build(service: str) -> Any:
    """The service as its composition root builds it, not started: nothing connects, so a
    database URL nobody listens on is enough (the environment is left alone)."""
    from launcher.services import settings_class

    settings = settings_class(service)(database_url="postgresql+asyncpg://render@127.0.0.1:9/render",
                   environment="development")
    logging.disable(logging.INFO)
    try:
        return importlib.import_module(f"{service}_service.main").create_service(settings)
    finally:
        logging.disable(logging.NOTSET)


def consumers_of(service: str, svc: Any) -> list[tuple[str, str]]:
    """(stream, durable) of every durable consumer the service (``svc``, as built) creates,
    advisories included."""
    found = [(c.stream, c.durable) for c in svc.consumers]
    if svc.consumers:
        fwd = AdvisoryForwarder(service=service, consumers=svc.consumers, js=None)  # type: ignore[arg-type]
        found.append((ADVISORY_STREAM, fwd.durable))
    return found


def consumer_api(stream: str, durable: str) -> list[str]:
    return [
        f"{API}.CONSUMER.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.CREATE.{stream}.{durable}.>",
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def emergency_reader() -> list[str]:
    """Read and watch the emergency bucket (every process freezes on it), never write."""
    return [f"{API}.DIRECT.GET.{KV}", f"{API}.DIRECT.GET.{KV}.>", f"{API}.STREAM.MSG.GET.{KV}",
            f"{API}.CONSUMER.CREATE.{KV}", f"{API}.CONSUMER.CREATE.{KV}.>",
            f"{API}.CONSUMER.DELETE.{KV}.*", f"{API}.CONSUMER.INFO.{KV}.*"]


def event_subjects(stream: str) -> list[str]:
    return list(next(s for s in STREAMS if s.name == stream).subjects)


def service_permissions(service: str) -> Permissions:
    svc = build(service)
    cons = consumers_of(service, svc)
    publish = [*event_subjects(OWN_STREAM[service]), f"{DLQ_SUBJECT_PREFIX}.{service}.>",
               f"{API}.INFO", f"{API}.STREAM.INFO.*"]
    # the max-deliveries forwarder reads the original message from the stream it came from
    publish += [f"{API}.STREAM.MSG.GET.{s}" for s in sorted({s for s, _ in cons})
                if s != ADVISORY_STREAM]
    for stream, durable in cons:
        publish += consumer_api(stream, durable)
    # the durables an earlier version declared, deleted at start (their own names only)
    publish += [f"{API}.CONSUMER.DELETE.{stream}.{service}__{name}"
                for stream, name in svc.router.retired]
    publish += emergency_reader()
    # its own dead letters, read to replay them on an admin's request (the gateway removes
    # a letter once it is applied: no service may delete from the DLQ)
    if cons:
        publish += [f"{API}.STREAM.MSG.GET.DLQ"]
    subscribe = [f"rpc.{service}.>", f"{inbox(service)}.>"]
    return Permissions(publish, subscribe, responses=True)


def gateway_permissions() -> Permissions:
    from gateway_service.routes.live import SUBJECTS, SUPPORT_SUBJECTS
    from gateway_service.security.sessions import CHANGED_SUBJECT

    publish = [*event_subjects("GATEWAY"), "rpc.>", f"{DLQ_SUBJECT_PREFIX}.gateway.>",
               f"{API}.INFO", f"{API}.STREAM.INFO.*", f"$KV.{EMERGENCY_BUCKET}.>",
               *emergency_reader(),
               # the admin's dead-letter screen: read and discard (replay goes to the service)
               f"{API}.STREAM.MSG.GET.DLQ", f"{API}.STREAM.MSG.DELETE.DLQ"]
    # the live stream's hints for open pages (core NATS, read only)
    subscribe = [CHANGED_SUBJECT, *sorted([*SUBJECTS, *SUPPORT_SUBJECTS]),
                 f"{inbox('gateway')}.>"]
    return Permissions(publish, subscribe, responses=False)


def permissions() -> dict[str, Permissions]:
    table = {s: service_permissions(s) for s in SERVICES}
    table["gateway"] = gateway_permissions()
    # creates the streams and the KV bucket before anything starts (bus-setup)
    table["provisioner"] = Permissions([f"{API}.>"], [f"{inbox('provisioner')}.>"], False)
    # break-glass for operators: the DLQ tool (read, replay to any subject, discard), nats CLI
    table["ops"] = Permissions([">"], [">"], False)
    return table


def _block(user: str, perms: Permissions, password: str) -> str:
    def quoted(items: list[str]) -> str:
        return "\n".join(f'          "{s}"' for s in items)

    lines = [
        "    {",
        f"      user: {user}",
        f"      password: {password}",
        "      permissions: {",
        "        publish: { allow: [",
        quoted(perms.publish),
        "        ] }",
        "        subscribe: { allow: [",
        quoted(perms.subscribe),
        "        ] }",
    ]
    if perms.responses:
        lines.append("        allow_responses: true")
    lines += ["      }", "    }"]
    return "\n".join(lines)


def render(passwords: dict[str, str] | None = None, *,
           header: str = "# Generated from the code by launcher.busauth: do not edit.\n") -> str:
    """The ``accounts`` block of a nats-server configuration. Without ``passwords`` each
    user's password is the variable ``$NATS_<USER>_PASSWORD`` (read from the server's
    environment); with them, the literal values (quoted)."""
    users = []
    for user, perms in permissions().items():
        pw = json.dumps(passwords[user]) if passwords else f"$NATS_{user.upper()}_PASSWORD"
        users.append(_block(user, perms, pw))
    return (header + "accounts: {\n  MICROTASK: {\n    jetstream: enabled\n    users: [\n"
            + "\n".join(users) + "\n    ]\n  }\n}\n")


def new_passwords() -> dict[str, str]:
    return {u: secrets.token_hex(24) for u in USERS}


def stored_passwords(folder: Path) -> dict[str, str]:
    """The embedded stack's passwords: made at the first start, kept (0600) after."""
    path = folder / "credentials.json"
    if path.exists():
        kept = json.loads(path.read_text())
        if set(USERS) <= set(kept):
            return {u: str(kept[u]) for u in USERS}
    folder.mkdir(parents=True, exist_ok=True)
    made = new_passwords()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(made, f, indent=1)
    return made


def service_env(user: str, password: str) -> dict[str, str]:
    """The settings that make a service (prefix ``<USER>_``) connect as its own user and
    leave the streams to the provisioner."""
    p = user.upper() + "_"
    return {f"{p}NATS_USER": user, f"{p}NATS_PASSWORD": password,
            f"{p}NATS_INBOX_PREFIX": inbox(user), f"{p}ENSURE_STREAMS": "false"}


async def provision(url: str, password: str, *, replicas: int = 1) -> None:
    """As the provisioner: every stream, and the emergency bucket, created or updated."""
    import asyncio
    import time

    import nats

    from servicekit.streams import ensure_bus

    deadline = time.monotonic() + 60
    while True:  # a fresh cluster elects its meta leader in a few seconds
        nc = await nats.connect(url.split(","), user="provisioner", password=password,
                                inbox_prefix=inbox("provisioner"), name="provisioner")
        try:
            await ensure_bus(nc.jetstream(), replicas=replicas, buckets={EMERGENCY_BUCKET: 16})
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
        finally:
            await nc.close()

"""Render deploy/nats/auth.conf: one NATS user per process, least-privilege permissions.

    .venv/bin/python deploy/nats/render_auth.py > deploy/nats/auth.conf

Everything comes from the code, so the permissions follow it: a service's own event
subjects from ``contracts.streams``, its durable consumers from the service itself
(``create_service().consumers``), its RPC subjects from ``rpc.<service>.>``. A test
(tests/deploy/test_nats.py) fails when the committed file differs from this output, so
adding a consumer without re-rendering is caught.

Passwords are never here: each is a variable (``$NATS_<USER>_PASSWORD``) that the NATS
servers read from their environment (a Secret). A bcrypt hash works as the value too.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from contracts.streams import DLQ_SUBJECT_PREFIX, STREAMS
from servicekit.consumer import AdvisoryForwarder

SERVICES = ("tasks", "review", "ledger", "rules", "support")
# which stream holds the events a process publishes (its outbox relay's subjects)
OWN_STREAM = {"tasks": "TASK", "review": "REVIEW", "ledger": "LEDGER", "rules": "RULES",
              "support": "SUPPORT", "gateway": "GATEWAY"}
EMERGENCY_BUCKET = "gateway_emergency"  # GatewaySettings.emergency_bucket
ADVISORY_STREAM = "ADVISORIES"
API = "$JS.API"


def inbox(user: str) -> str:
    """Each process gets its own reply-inbox prefix, so nobody can read another's replies."""
    return f"_INBOX_{user}"


def build(service: str) -> Any:
    """The service as its composition root builds it, not started: nothing connects, so a
    database URL nobody listens on is enough when none is set."""
    os.environ.setdefault(f"{service.upper()}_DATABASE_URL",
                          "postgresql+asyncpg://render@127.0.0.1:9/render")
    logging.disable(logging.INFO)
    try:
        return importlib.import_module(f"{service}_service.main").create_service()
    finally:
        logging.disable(logging.NOTSET)


def consumers_of(service: str) -> list[tuple[str, str]]:
    """(stream, durable) of every durable consumer the service creates, advisories included."""
    svc = build(service)
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


def event_subjects(stream: str) -> list[str]:
    return list(next(s for s in STREAMS if s.name == stream).subjects)


def service_permissions(service: str) -> tuple[list[str], list[str]]:
    cons = consumers_of(service)
    publish = [*event_subjects(OWN_STREAM[service]), f"{DLQ_SUBJECT_PREFIX}.{service}.>",
               f"{API}.INFO", f"{API}.STREAM.INFO.*"]
    # the max-deliveries forwarder reads the original message from the stream it came from
    publish += [f"{API}.STREAM.MSG.GET.{s}" for s in sorted({s for s, _ in cons})
                if s != ADVISORY_STREAM]
    for stream, durable in cons:
        publish += consumer_api(stream, durable)
    subscribe = [f"rpc.{service}.>", f"{inbox(service)}.>"]
    return publish, subscribe


def gateway_permissions() -> tuple[list[str], list[str]]:
    kv = f"KV_{EMERGENCY_BUCKET}"
    publish = [*event_subjects("GATEWAY"), "rpc.>", f"{DLQ_SUBJECT_PREFIX}.gateway.>",
               f"{API}.INFO", f"{API}.STREAM.INFO.*",
               f"$KV.{EMERGENCY_BUCKET}.>", f"{API}.DIRECT.GET.{kv}", f"{API}.DIRECT.GET.{kv}.>",
               f"{API}.STREAM.MSG.GET.{kv}", f"{API}.CONSUMER.CREATE.{kv}",
               f"{API}.CONSUMER.CREATE.{kv}.>", f"{API}.CONSUMER.DELETE.{kv}.*",
               f"{API}.CONSUMER.INFO.{kv}.*"]
    # the live stream's hints (/api/live) come from core subscriptions to these subjects
    from gateway_service.routes.live import SUBJECTS, SUPPORT_SUBJECTS

    subscribe = ["gateway.sessions.changed", *SUBJECTS, *SUPPORT_SUBJECTS,
                 f"{inbox('gateway')}.>"]
    return publish, subscribe


def block(user: str, publish: list[str], subscribe: list[str], *, responses: bool) -> str:
    def quoted(items: list[str]) -> str:
        return "\n".join(f'          "{s}"' for s in items)

    lines = [
        "    {",
        f"      user: {user}",
        f"      password: $NATS_{user.upper()}_PASSWORD",
        "      permissions: {",
        "        publish: { allow: [",
        quoted(publish),
        "        ] }",
        "        subscribe: { allow: [",
        quoted(subscribe),
        "        ] }",
    ]
    if responses:  # answer requests it received (RPC replies), nothing else
        lines.append("        allow_responses: true")
    lines += ["      }", "    }"]
    return "\n".join(lines)


def render() -> str:
    users = []
    for service in SERVICES:
        pub, sub = service_permissions(service)
        users.append(block(service, pub, sub, responses=True))
    pub, sub = gateway_permissions()
    users.append(block("gateway", pub, sub, responses=False))
    # creates the streams and the KV bucket before anything starts (bus-setup)
    users.append(block("provisioner", [f"{API}.>"], [f"{inbox('provisioner')}.>"],
                       responses=False))
    # break-glass for operators: the DLQ tool (read, replay to any subject, discard), nats CLI
    users.append(block("ops", [">"], [">"], responses=False))
    header = ("# Generated by deploy/nats/render_auth.py from contracts and the services'\n"
              "# consumers: do not edit by hand. Included by nats.conf.\n")
    return (header + "accounts: {\n  MICROTASK: {\n    jetstream: enabled\n    users: [\n"
            + "\n".join(users) + "\n    ]\n  }\n}\n")


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)
    sys.stdout.write(render())

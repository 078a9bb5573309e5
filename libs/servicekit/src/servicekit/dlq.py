"""Inspect, replay and discard dead letters.

    python -m servicekit.dlq list    [--nats URL]
    python -m servicekit.dlq replay  SEQ [--nats URL]
    python -m servicekit.dlq discard SEQ [--nats URL]

Replay republishes the original message to its original subject and removes it
from the DLQ. Consumers that already handled the event find it in their inbox
and skip it, so only the consumer that failed applies it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import nats
from nats.js import JetStreamContext

DLQ_STREAM = "DLQ"


async def list_dead_letters(js: JetStreamContext, limit: int = 100) -> list[dict[str, Any]]:
    info = await js.stream_info(DLQ_STREAM)
    out: list[dict[str, Any]] = []
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(out) < limit:
        try:
            msg = await js.get_msg(DLQ_STREAM, seq)
        except nats.js.errors.NotFoundError:
            seq += 1
            continue
        out.append({"seq": seq, "subject": msg.subject, "headers": dict(msg.headers or {}),
                    "size": len(msg.data or b"")})
        seq += 1
    return out


async def replay(js: JetStreamContext, seq: int) -> str:
    msg = await js.get_msg(DLQ_STREAM, seq)
    headers = dict(msg.headers or {})
    subject = str(headers["Dlq-Original-Subject"])
    keep = {k: v for k, v in headers.items() if k.lower() == "traceparent"}
    keep["Nats-Msg-Id"] = f"replay:{seq}:{time.time_ns()}"
    await js.publish(subject, msg.data or b"", headers=keep)
    await js.delete_msg(DLQ_STREAM, seq)
    return subject


async def discard(js: JetStreamContext, seq: int) -> None:
    await js.delete_msg(DLQ_STREAM, seq)


async def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m servicekit.dlq")
    ap.add_argument("command", choices=["list", "replay", "discard"])
    ap.add_argument("seq", nargs="?", type=int)
    ap.add_argument("--nats", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4250"))
    args = ap.parse_args(argv)
    # as the bus's "ops" user where the bus has users: NATS_USER / NATS_PASSWORD (make run
    # keeps them in data/nats-auth/credentials.json)
    creds = ({"user": os.environ["NATS_USER"], "password": os.environ.get("NATS_PASSWORD", "")}
             if os.environ.get("NATS_USER") else {})
    nc = await nats.connect(args.nats, **creds)
    js = nc.jetstream()
    try:
        if args.command == "list":
            for row in await list_dead_letters(js):
                h = row["headers"]
                print(f"{row['seq']:>6} {h.get('Dlq-Consumer', '?'):<40} "
                      f"{h.get('Dlq-Original-Subject', '?'):<28} {h.get('Dlq-Reason', '?')}: "
                      f"{h.get('Dlq-Error-Type', '')} {h.get('Dlq-Error-Message', '')[:80]}")
        elif args.seq is None:
            ap.error("replay/discard need SEQ")
        elif args.command == "replay":
            print(f"replayed {args.seq} to {await replay(js, args.seq)}")
        else:
            await discard(js, args.seq)
            print(f"discarded {args.seq}")
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(_main())

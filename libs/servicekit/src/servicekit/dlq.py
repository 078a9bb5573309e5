"""Inspect, replay and discard dead letters.

    python -m servicekit.dlq list    [--from SEQ] [--limit N] [--nats URL]
    python -m servicekit.dlq replay  SEQ [--nats URL]
    python -m servicekit.dlq discard SEQ [--nats URL]

``list`` shows a page (100 by default) and says how to ask for the next one; a number that
is not in the DLQ is a one-line error (exit status 1), not a traceback.

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

from contracts.streams import DLQ_SUBJECT_PREFIX

DLQ_STREAM = "DLQ"
DLQ_SUBJECTS = f"{DLQ_SUBJECT_PREFIX}.>"


async def next_letter(js: JetStreamContext, start: int) -> Any | None:
    """The first dead letter at sequence ``start`` or after (gaps left by replayed or
    discarded letters cost nothing: the server finds the next one), or None."""
    try:
        msg = await js.get_msg(DLQ_STREAM, max(start, 1), subject=DLQ_SUBJECTS, next=True)
    except nats.js.errors.NotFoundError:
        return None
    assert msg.seq is not None
    return msg


async def list_dead_letters(js: JetStreamContext, limit: int = 100,
                            start: int = 1) -> list[dict[str, Any]]:
    """Up to ``limit`` dead letters from sequence ``start`` on, oldest first."""
    out: list[dict[str, Any]] = []
    seq = max(start, 1)
    while len(out) < limit and (msg := await next_letter(js, seq)) is not None:
        out.append({"seq": msg.seq, "subject": msg.subject, "headers": dict(msg.headers or {}),
                    "size": len(msg.data or b"")})
        seq = msg.seq + 1
    return out


async def count_dead_letters(js: JetStreamContext) -> int:
    info = await js.stream_info(DLQ_STREAM)
    return int(info.state.messages)


class NoSuchLetter(LookupError):
    """The number is not in the DLQ (replayed, discarded, or never there)."""


async def letter(js: JetStreamContext, seq: int) -> Any:
    """Dead letter ``seq`` as the stream holds it, or :class:`NoSuchLetter`."""
    try:
        return await js.get_msg(DLQ_STREAM, seq)
    except nats.js.errors.NotFoundError:
        raise NoSuchLetter(f"no dead letter {seq} (`list` shows the numbers)") from None


async def replay(js: JetStreamContext, seq: int) -> str:
    msg = await letter(js, seq)
    headers = dict(msg.headers or {})
    if "Dlq-Original-Subject" not in headers:
        raise NoSuchLetter(f"message {seq} has no Dlq-Original-Subject: not a dead letter")
    subject = str(headers["Dlq-Original-Subject"])
    keep = {k: v for k, v in headers.items() if k.lower() == "traceparent"}
    keep["Nats-Msg-Id"] = f"replay:{seq}:{time.time_ns()}"
    await js.publish(subject, msg.data or b"", headers=keep)
    await js.delete_msg(DLQ_STREAM, seq)
    return subject


async def discard(js: JetStreamContext, seq: int) -> None:
    await letter(js, seq)
    await js.delete_msg(DLQ_STREAM, seq)


async def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m servicekit.dlq")
    ap.add_argument("command", choices=["list", "replay", "discard"])
    ap.add_argument("seq", nargs="?", type=int)
    ap.add_argument("--from", dest="start", type=int, default=1,
                    help="list from this sequence number on")
    ap.add_argument("--limit", type=int, default=100, help="letters per page (list)")
    ap.add_argument("--nats", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4250"))
    args = ap.parse_args(argv)
    if args.command != "list" and args.seq is None:
        ap.error("replay/discard need SEQ")
    # as the bus's "ops" user where the bus has users: NATS_USER / NATS_PASSWORD (make run
    # keeps them in data/nats-auth/credentials.json)
    creds = ({"user": os.environ["NATS_USER"], "password": os.environ.get("NATS_PASSWORD", "")}
             if os.environ.get("NATS_USER") else {})
    nc = await nats.connect(args.nats, **creds)
    js = nc.jetstream()
    try:
        if args.command == "list":
            await _print_page(js, args.start, max(args.limit, 1))
        elif args.command == "replay":
            print(f"replayed {args.seq} to {await replay(js, args.seq)}")
        else:
            await discard(js, args.seq)
            print(f"discarded {args.seq}")
    except NoSuchLetter as exc:
        ap.exit(1, f"{ap.prog}: {exc}\n")
    finally:
        await nc.close()


async def _print_page(js: JetStreamContext, start: int, limit: int) -> None:
    rows = await list_dead_letters(js, limit=limit + 1, start=start)
    for row in rows[:limit]:
        h = row["headers"]
        print(f"{row['seq']:>6} {h.get('Dlq-Consumer', '?'):<40} "
              f"{h.get('Dlq-Original-Subject', '?'):<28} {h.get('Dlq-Reason', '?')}: "
              f"{h.get('Dlq-Error-Type', '')} {h.get('Dlq-Error-Message', '')[:80]}")
    total = await count_dead_letters(js)
    shown = min(len(rows), limit)
    print(f"{shown} shown, {total} in the DLQ" + (
        f"; next page: list --from {rows[limit]['seq']}" if len(rows) > limit else ""))

if __name__ == "__main__":
    asyncio.run(_main())

"""Create or update the bus's streams and consumers from their declarations."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.streams import STREAMS, StreamSpec

log = logging.getLogger("servicekit.streams")


def stream_config(spec: StreamSpec, *, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        description=spec.description,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=float(spec.max_age_s),
        duplicate_window=float(spec.duplicate_window_s),
        num_replicas=replicas,
    )


async def ensure_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create every stream of the bus, or update it to its declared config."""
    for spec in STREAMS:
        cfg = stream_config(spec, replicas=replicas)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(cfg)
            log.info("stream %s created", spec.name)
            continue
        await js.update_stream(cfg)


async def apply_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or update an existing one to ``config``.

    nats-py's ``pull_subscribe`` (and so FastStream) binds to an existing
    durable as it is; the server's CONSUMER.CREATE without an action is
    create-or-update, so calling it first makes the code's settings win.
    """
    await js.add_consumer(stream, config=config)


async def ensure_bus(js: JetStreamContext, *, replicas: int = 1,
                     buckets: dict[str, int] | None = None) -> None:
    """Every stream and the given KV buckets (name -> history), created or updated to
    ``replicas``: the provisioner's one job (services may not change streams)."""
    from nats.js.errors import BucketNotFoundError

    await ensure_streams(js, replicas=replicas)
    for bucket, history in (buckets or {}).items():
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            await js.create_key_value(bucket=bucket, history=history, replicas=replicas)
            log.info("bucket %s created", bucket)
            continue
        info = await js.stream_info(f"KV_{bucket}")
        if info.config.num_replicas != replicas or info.config.max_msgs_per_subject != history:
            info.config.num_replicas = replicas
            info.config.max_msgs_per_subject = history
            await js.update_stream(info.config)


def main(argv: list[str] | None = None) -> int:
    """``python -m servicekit.streams ensure [--replicas 3] [--kv NAME:HISTORY ...]``,
    connecting with NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TLS_CA_FILE and
    NATS_INBOX_PREFIX; retries for ``--timeout`` seconds while the cluster has no leader."""
    import argparse
    import asyncio
    import os
    import ssl
    import time

    import nats
    from nats.errors import Error as NatsError

    ap = argparse.ArgumentParser(prog="python -m servicekit.streams")
    ap.add_argument("action", choices=["ensure"])
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--kv", action="append", default=[], metavar="NAME:HISTORY")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    try:
        buckets = {n: int(h) for n, h in (kv.split(":", 1) for kv in args.kv)}
    except ValueError:
        ap.error("--kv takes NAME:HISTORY, e.g. gateway_emergency:16")
    env = os.environ
    opts: dict[str, object] = {"name": "bus-setup", "allow_reconnect": False,
                               "connect_timeout": 5}
    if env.get("NATS_USER"):
        opts.update(user=env["NATS_USER"], password=env.get("NATS_PASSWORD", ""))
    if env.get("NATS_INBOX_PREFIX"):
        opts["inbox_prefix"] = env["NATS_INBOX_PREFIX"]
    if env.get("NATS_TLS_CA_FILE"):
        opts["tls"] = ssl.create_default_context(cafile=env["NATS_TLS_CA_FILE"])
    servers = [u.strip() for u in env.get("NATS_URL", "nats://127.0.0.1:4222").split(",")]

    async def once() -> None:
        nc = await nats.connect(servers, **opts)
        try:
            await ensure_bus(nc.jetstream(), replicas=args.replicas, buckets=buckets)
        finally:
            await nc.close()

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            asyncio.run(once())
            print(f"bus ready: streams and {sorted(buckets)} at R{args.replicas}", flush=True)
            return 0
        except (TimeoutError, NatsError, OSError) as exc:
            if time.monotonic() >= deadline:
                print(f"bus-setup failed: {exc!r}", flush=True)
                return 1
            print(f"bus not ready yet ({exc!r}); retrying", flush=True)
            time.sleep(2.0)


if __name__ == "__main__":
    raise SystemExit(main())

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

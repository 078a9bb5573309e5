"""Compatibility shim between nats-py 2.16 and FastStream 0.7.8.

nats-py's ``PullSubscription.fetch`` raises a bare ``asyncio.TimeoutError`` on
one path (the deadline ran out before the lingering request), while
FastStream's pull loop only suppresses ``nats.errors.TimeoutError``. The bare
error escapes, FastStream's supervisor logs a traceback and restarts the loop
after a pause, delaying delivery. Raising nats' own subclass keeps the loop
quiet and immediate. Remove when either library is fixed.
"""

from __future__ import annotations

import asyncio
import functools

import nats.errors
from nats.js.client import JetStreamContext

_original_fetch = JetStreamContext.PullSubscription.fetch


@functools.wraps(_original_fetch)
async def _fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return await _original_fetch(self, *args, **kwargs)
    except nats.errors.TimeoutError:
        raise
    except asyncio.TimeoutError as exc:
        raise nats.errors.TimeoutError from exc


def install() -> None:
    if JetStreamContext.PullSubscription.fetch is not _fetch:
        JetStreamContext.PullSubscription.fetch = _fetch  # type: ignore[method-assign]

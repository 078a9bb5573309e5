"""The platform's emergency read-only switch, as every process sees it.

The gateway owns the switch (a JetStream KV bucket, ``contracts.streams.EMERGENCY_BUCKET``);
each process watches the key and re-reads it periodically as a safety net, so a check is
a look at memory. The service kit pauses background jobs that change state while it is
on; the gateway refuses client writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from contracts.streams import EMERGENCY_BUCKET, EMERGENCY_KEY
from servicekit.context import ReadOnlyState

log = logging.getLogger("servicekit.emergency")


class EmergencyWatch(ReadOnlyState):
    def __init__(self, bucket: str = EMERGENCY_BUCKET, *, refresh_s: float = 5.0) -> None:
        self.bucket_name = bucket
        self.refresh_s = refresh_s
        self.state: dict[str, Any] = {"enabled": False, "reason": "", "by_user_id": None,
                                      "changed_at": None}
        self._kv: Any = None
        self._nc: NATS | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def enabled(self) -> bool:  # type: ignore[override]
        return bool(self.state.get("enabled"))

    async def open_bucket(self, nc: NATS) -> Any:
        """The bucket; a service waits for the gateway to create it (None until then)."""
        try:
            return await nc.jetstream().key_value(self.bucket_name)
        except BucketNotFoundError:
            return None

    async def start(self, nc: NATS) -> None:
        self._nc = nc
        self._kv = await self.open_bucket(nc)
        if self._kv is not None:
            await self.refresh()
        self._tasks = [asyncio.create_task(self._watch()),
                       asyncio.create_task(self._refresh_loop())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _apply(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("ignoring a malformed emergency state in the KV bucket")
            return
        if data != self.state:
            self.state = data
            log.warning("emergency read-only mode is %s", "ON" if self.enabled else "off")

    async def refresh(self) -> None:
        if self._kv is None and self._nc is not None:
            self._kv = await self.open_bucket(self._nc)
        if self._kv is None:
            return
        try:
            entry = await self._kv.get(EMERGENCY_KEY)
        except KeyNotFoundError:
            return
        self._apply(entry.value)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus may be reconnecting: keep the last state
                log.warning("emergency refresh failed: %s", type(exc).__name__)

    async def _watch(self) -> None:
        while True:
            watcher = None
            try:
                if self._kv is None:
                    await asyncio.sleep(1.0)
                    await self.refresh()
                    continue
                watcher = await self._kv.watch(EMERGENCY_KEY)
                async for entry in watcher:
                    if entry is not None and entry.operation is None:
                        self._apply(entry.value)
            except asyncio.CancelledError:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()
                raise
            except Exception as exc:
                log.warning("emergency watch failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1.0)

"""A short-lived, per-replica cache of session rows, invalidated on every change.

Every API request resolves its bearer token; without a cache that is a database
round trip per request. The cache keeps the joined session + user row for at most
``ttl_s`` seconds. Whatever changes a session or its user (logout, logout-all, a
password change, MFA elevation) drops that user's entries on this replica at once
and tells the other replicas over core NATS (``gateway.sessions.changed``); a lost
notice (core NATS is at-most-once) is bounded by the TTL. The once-a-minute idle
mark updates the cached copy in place.

A read that raced a change is used for its own request but not cached: a global
generation number, bumped by every change, is read before the database and checked
before the row is stored. Changes are rare next to requests, so one number is enough.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

log = logging.getLogger("gateway.session_cache")

CHANGED_SUBJECT = "gateway.sessions.changed"


class SessionCache:
    def __init__(self, *, ttl_s: float, max_entries: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._rows: OrderedDict[str, tuple[float, str, dict[str, Any]]] = OrderedDict()
        self._by_user: dict[str, set[str]] = {}
        self._generation = 0
        self._nc: Any = None
        self._sub: Any = None
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def generation(self) -> int:
        return self._generation

    def get(self, token_hash: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        hit = self._rows.get(token_hash)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            self.misses += 1
            return None
        self.hits += 1
        return hit[2]

    def put(self, token_hash: str, row: dict[str, Any], *, generation: int) -> None:
        """Cache ``row`` unless its user changed since the read began (``generation``)."""
        if not self.enabled:
            return
        if self._generation != generation:
            return
        user_id = row["user_id"]
        self._rows[token_hash] = (time.monotonic(), user_id, row)
        self._rows.move_to_end(token_hash)
        self._by_user.setdefault(user_id, set()).add(token_hash)
        while len(self._rows) > self.max_entries:
            old_hash, (_, old_user, _) = self._rows.popitem(last=False)
            self._forget(old_user, old_hash)

    def _forget(self, user_id: str, token_hash: str) -> None:
        hashes = self._by_user.get(user_id)
        if hashes is not None:
            hashes.discard(token_hash)
            if not hashes:
                del self._by_user[user_id]

    def drop_user(self, user_id: str) -> None:
        """Forget every cached session of ``user_id`` on this replica."""
        self._generation += 1
        for h in self._by_user.pop(user_id, set()):
            self._rows.pop(h, None)

    async def changed(self, user_id: str) -> None:
        """A session or the user changed (after commit): drop here, tell the other replicas."""
        self.drop_user(user_id)
        if self._nc is not None and self._nc.is_connected:
            try:
                await self._nc.publish(CHANGED_SUBJECT, json.dumps({"user_id": user_id}).encode())
            except Exception as exc:  # the TTL bounds what a lost notice costs
                log.warning("session change notice not sent: %s", exc)

    async def start(self, nc: Any) -> None:
        self._nc = nc

        async def on_changed(msg: Any) -> None:
            try:
                user_id = json.loads(msg.data)["user_id"]
            except (ValueError, KeyError, TypeError):
                return
            self.drop_user(str(user_id))

        self._sub = await nc.subscribe(CHANGED_SUBJECT, cb=on_changed)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
        self._sub = None
        self._nc = None

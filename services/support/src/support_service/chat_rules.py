"""Chat rules without I/O: who may read and write a thread, and the per-user rate limit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

STAFF_ROLES = ("manager", "admin")


def may_use_assignment_thread(*, worker_id: str, user_id: str, role: str) -> bool:
    """A task chat is between the assignment's worker and the reviewing staff."""
    return role in STAFF_ROLES or worker_id == user_id


def retry_after_s(posts: Sequence[datetime], *, now: datetime, max_posts: int,
                  window_s: float) -> int | None:
    """Seconds until one more post fits in the window (rounded up), or None when it fits
    now. ``posts`` are this user's posts inside the window, oldest first."""
    if len(posts) < max_posts:
        return None
    frees_at = posts[len(posts) - max_posts] + timedelta(seconds=window_s)
    return max(1, math.ceil((frees_at - now).total_seconds()))

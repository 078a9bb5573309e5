"""What the gateway needs to compose admin-only facts into a worker's view (record 23):
its own actor, and the worker's credit per task as the ledger books it."""

from __future__ import annotations

from contracts.rpc import Actor

# The gateway itself, reading admin-only facts to compose a worker's view; a reply built
# from them carries only what that worker may see (tested in tests/e2e).
GATEWAY_ACTOR = Actor(user_id="gateway", role="admin")

BPS_SCALE = 10_000


def worker_credit(price_minor: int, share_bps: int) -> int:
    """What the ledger credits the worker for one accepted task: the worker's part rounds
    down (ledger's ``split_price``; tests/e2e checks the two agree on a real credit)."""
    return price_minor * share_bps // BPS_SCALE

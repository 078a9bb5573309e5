"""Requester budgets and payout destinations, against a real nats-server and database:
top-ups once per key, a pool reserves its maximum cost or is refused, acceptances and
bonuses spend the budget exactly once, closing releases the rest, and every sum holds to
the minor unit; payout destinations are masked for everyone but the owner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from contracts.envelope import new_envelope
from contracts.events import BonusGranted, PoolOpened, ReviewAccepted
from contracts.rpc import Actor
from contracts.rpc import ledger as rpc
from ledger_service.main import create_service
from ledger_service.settings import LedgerSettings
from servicekit.errors import RpcCallError
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from servicekit.testing import consumers_drained

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="owner-1", role="admin")
PRICE = 999          # odd: the worker's half rounds down, the platform keeps the extra unit
SHARE_BPS = 5000     # the built-in default share


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Books:
    def __init__(self, svc: Any, nc: Any) -> None:
        self.svc, self.nc, self.js, self.client = svc, nc, nc.jetstream(), RpcClient(nc)

    async def call(self, spec: Any, request: Any) -> Any:
        return await self.client.call(spec, request)

    async def error(self, spec: Any, request: Any) -> Any:
        with pytest.raises(RpcCallError) as err:
            await self.client.call(spec, request)
        return err.value.error

    async def publish(self, event: Any, producer: str, env: Any = None) -> Any:
        env = env or new_envelope(event, producer=producer)
        await self.js.publish(env.type, env.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": env.event_id})
        return env

    async def idle(self) -> None:
        """Wait until the ledger consumers have handled everything published so far."""
        await consumers_drained(self.js, [(c.stream, c.durable) for c in self.svc.consumers],
                                timeout_s=8, interval_s=0.02)


@pytest.fixture
async def books(module_nats, database_url) -> AsyncIterator[Books]:
    upgrade(SERVICE_DIR, database_url)
    svc = create_service(LedgerSettings(database_url=database_url, nats_url=module_nats.url,
                                        environment="test", relay_poll_interval_s=0.05,
                                        log_json=False))
    await svc.start()
    nc = await nats.connect(module_nats.url)
    try:
        yield Books(svc, nc)
    finally:
        await nc.close()
        await svc.stop()


def accepted(pool: str, worker: str, assignment: str | None = None) -> ReviewAccepted:
    return ReviewAccepted(assignment_id=assignment or uid("as"), task_id=uid("t"),
                          pool_id=pool, project_id="proj-1", worker_id=worker,
                          decided_by="m1", decided_at=datetime.now(UTC))


async def test_a_pool_spends_its_requesters_budget_to_the_minor_unit(books: Books) -> None:
    req = await books.call(rpc.CREATE_REQUESTER, rpc.CreateRequester(
        actor=ADMIN, name="Acme labelling", currency="EUR"))
    rid = req.requester_id
    # the owner tops up twice, the second retried with the same key: counted once
    await books.call(rpc.TOP_UP, rpc.TopUp(actor=ADMIN, requester_id=rid, amount_minor=4_000,
                                           comment="invoice 1"))
    for _ in range(2):
        top = await books.call(rpc.TOP_UP, rpc.TopUp(
            actor=ADMIN, requester_id=rid, amount_minor=3_000, comment="invoice 2",
            idempotency_key="inv-2"))
    assert top.replayed and top.requester.available_minor == 7_000
    reused = await books.error(rpc.TOP_UP, rpc.TopUp(
        actor=ADMIN, requester_id=rid, amount_minor=1, comment="other", idempotency_key="inv-2"))
    assert reused.code == "idempotency_key_reused"

    pool = uid("pool")
    linked = await books.call(rpc.LINK_POOL_BUDGET, rpc.LinkPoolBudget(
        actor=ADMIN, pool_id=pool, requester_id=rid, currency="EUR"))
    assert linked.funded_by == "requester" and linked.reserved_minor == 0
    other = await books.call(rpc.CREATE_REQUESTER, rpc.CreateRequester(
        actor=ADMIN, name="Other", currency="EUR"))
    relink = await books.error(rpc.LINK_POOL_BUDGET, rpc.LinkPoolBudget(
        actor=ADMIN, pool_id=pool, requester_id=other.requester_id, currency="EUR"))
    assert relink.code == "pool_budget_linked" and relink.status == 409

    # 8 answers at 999 cost 7992 > 7000: refused with the amounts, nothing moved
    short = await books.error(rpc.RESERVE_POOL_BUDGET, rpc.ReservePoolBudget(
        actor=ADMIN, pool_id=pool, max_cost_minor=8 * PRICE, currency="EUR"))
    assert short.code == "budget_insufficient" and short.status == 409
    assert short.details["required_minor"] == 7_992 and short.details["available_minor"] == 7_000
    assert (await books.call(rpc.GET_REQUESTER, rpc.GetRequester(
        actor=ADMIN, requester_id=rid))).available_minor == 7_000

    # 6 answers fit; asking again reserves nothing more
    for moved in (6 * PRICE, 0):
        budget = await books.call(rpc.RESERVE_POOL_BUDGET, rpc.ReservePoolBudget(
            actor=ADMIN, pool_id=pool, max_cost_minor=6 * PRICE, currency="EUR"))
        assert budget.reserved_now_minor == moved
    assert budget.reserved_minor == budget.remaining_minor == 5_994
    r = await books.call(rpc.GET_REQUESTER, rpc.GetRequester(actor=ADMIN, requester_id=rid))
    assert (r.available_minor, r.reserved_minor) == (1_006, 5_994)

    # the pool opens; four acceptances, one of them delivered three times; one bonus
    await books.publish(PoolOpened(pool_id=pool, project_id="proj-1", price_minor=PRICE,
                                   currency="EUR", opened_at=datetime.now(UTC)), "tasks")
    workers = [uid("w") for _ in range(4)]
    twice = accepted(pool, workers[0])
    for _ in range(3):
        await books.publish(twice, "review")  # new envelope each time: the business key holds
    for w in workers[1:]:
        await books.publish(accepted(pool, w), "review")
    await books.publish(BonusGranted(rule_id="r1", firing_id=uid("f"), worker_id=workers[1],
                                     bonus_id=uid("b"), pool_id=pool, amount_minor=100,
                                     currency="EUR"), "rules")
    await books.idle()

    spent = await books.call(rpc.GET_POOL_BUDGET, rpc.PoolBudgetRequest(actor=ADMIN,
                                                                        pool_id=pool))
    worker_part = PRICE * SHARE_BPS // 10_000
    assert spent.spent_from_reserve_minor == 4 * PRICE
    assert spent.spent_from_available_minor == 100          # the bonus: from the budget
    assert spent.remaining_minor == 5_994 - 4 * PRICE
    assert spent.worker_credits_minor == 4 * worker_part + 100
    assert spent.platform_credits_minor == 4 * (PRICE - worker_part)

    # closing releases what is left; a second release moves nothing
    done = await books.call(rpc.RELEASE_POOL_BUDGET, rpc.PoolBudgetRequest(actor=ADMIN,
                                                                          pool_id=pool))
    again = await books.call(rpc.RELEASE_POOL_BUDGET, rpc.PoolBudgetRequest(actor=ADMIN,
                                                                           pool_id=pool))
    assert done.reserved_now_minor == -(2 * PRICE) and again.reserved_now_minor == 0
    assert again.remaining_minor == 0
    assert again.spent_from_reserve_minor + again.released_minor == again.reserved_minor
    assert again.worker_credits_minor + again.platform_credits_minor == again.spent_minor
    r = await books.call(rpc.GET_REQUESTER, rpc.GetRequester(actor=ADMIN, requester_id=rid))
    assert (r.available_minor, r.reserved_minor) == (7_000 - 4 * PRICE - 100, 0)

    consistency = await books.call(rpc.CHECK_CONSISTENCY, rpc.ConsistencyRequest(actor=ADMIN))
    assert consistency.ok, consistency.findings
    # the database itself refuses a budget below zero
    async with books.svc.engine.begin() as conn:
        with pytest.raises(DBAPIError, match="ck_balances_non_negative"):
            await conn.execute(text(
                "UPDATE balances SET balance_minor = balance_minor - 1000000 "
                "WHERE account_id = :a"), {"a": f"requester_available:EUR:{rid}"})


async def test_a_pool_without_a_requester_is_funded_by_the_platform(books: Books) -> None:
    pool = uid("pool")
    budget = await books.call(rpc.RESERVE_POOL_BUDGET, rpc.ReservePoolBudget(
        actor=ADMIN, pool_id=pool, max_cost_minor=10**9, currency="USD"))
    assert budget.funded_by == "platform" and budget.reserved_now_minor == 0
    await books.publish(PoolOpened(pool_id=pool, project_id="proj-1", price_minor=200,
                                   currency="USD", opened_at=datetime.now(UTC)), "tasks")
    w = uid("w")
    await books.publish(accepted(pool, w), "review")
    await books.idle()
    bal = await books.call(rpc.BALANCE, rpc.BalanceRequest(actor=Actor(user_id=w,
                                                                       role="worker")))
    assert [b.available_minor for b in bal.balances] == [100]


async def test_payout_destination_is_masked_for_all_but_the_owner(books: Books) -> None:
    pool, w = uid("pool"), Actor(user_id=uid("w"), role="worker")
    await books.publish(PoolOpened(pool_id=pool, project_id="proj-1", price_minor=10_000,
                                   currency="GBP", opened_at=datetime.now(UTC)), "tasks")
    await books.publish(accepted(pool, w.user_id), "review")
    await books.idle()
    card = "4111 1111 1111 1234"
    mine = await books.call(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=w, amount_minor=1_000, comment="please", destination_method="card",
        destination_details=card))
    assert mine.destination_method == "card" and mine.destination_masked
    assert mine.destination_details == "•••• 1234"
    history = await books.call(rpc.MY_PAYOUTS, rpc.MyPayouts(actor=w))
    assert [p.destination_details for p in history.items] == ["•••• 1234"]
    owner = await books.call(rpc.LIST_PAYOUTS, rpc.ListPayouts(actor=ADMIN,
                                                               worker_id=w.user_id))
    assert [(p.destination_details, p.destination_masked) for p in owner.items] == [
        (card, False)]
    paid = await books.call(rpc.APPROVE_PAYOUT, rpc.DecidePayout(actor=ADMIN,
                                                                 payout_id=mine.payout_id))
    assert paid.destination_details == card
    with pytest.raises(ValueError, match="go together"):
        rpc.RequestPayout(actor=w, amount_minor=1, comment="x", destination_method="card")

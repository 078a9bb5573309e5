"""Ledger service against a real nats-server and a fresh database per test.

The module runs its own nats-server; each test also uses another currency than the test
before it, and its own worker and pool ids, so its money cannot mix with another test's
events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from contracts.envelope import new_envelope
from contracts.events import BonusGranted, PoolOpened, ReviewAccepted
from contracts.money import CURRENCIES
from contracts.rpc import Actor
from contracts.rpc import ledger as rpc
from ledger_service import payouts
from ledger_service.db import entries, pools, transfers
from ledger_service.main import create_service
from ledger_service.settings import LedgerSettings
from servicekit.errors import RpcCallError
from servicekit.migrations import upgrade
from servicekit.rpc import RpcClient
from servicekit.service import Service
from servicekit.testing import consumers_drained

SERVICE_DIR = Path(__file__).parents[1]
ADMIN = Actor(user_id="owner-1", role="admin")
MANAGER = Actor(user_id="manager-1", role="manager")
# The gateway's rule: no key naming a share, a price or the platform's cut reaches
# a worker or a manager.
_CURRENCIES = itertools.cycle(CURRENCIES)
HIDDEN_KEY = re.compile(r"(^|_)(share|shares|share_bps|worker_share|price|price_minor|gross"
                        r"|gross_minor|platform|platform_minor|platform_revenue)(_|$)", re.I)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def worker() -> Actor:
    return Actor(user_id=uid("w"), role="worker")


@dataclass
class Ledger:
    svc: Service
    nc: NATS
    js: JetStreamContext
    client: RpcClient
    currency: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def call(self, spec, request) -> Any:
        return (await self.client.call(spec, request)).model_dump(mode="json")

    async def error(self, spec, request) -> Any:
        with pytest.raises(RpcCallError) as err:
            await self.client.call(spec, request)
        return err.value.error

    async def publish(self, event, *, producer: str, env=None, msg_id: bool = True):
        env = env or new_envelope(event, producer=producer)
        await self.js.publish(env.type, env.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": env.event_id} if msg_id else None)
        return env

    async def open_pool(self, pool: str, price: int) -> PoolOpened:
        """Tell the ledger a pool's price the way the tasks service does when it opens."""
        event = PoolOpened(pool_id=pool, project_id="proj-1", price_minor=price,
                           currency=self.currency, opened_at=datetime.now(UTC))
        await self.publish(event, producer="tasks")
        return event

    async def accepted(self, w: Actor, *, price: int, pool: str | None = None,
                       assignment_id: str | None = None) -> ReviewAccepted:
        """An acceptance in a pool (a new one unless named) that opened at ``price``."""
        pool = pool or uid("pool")
        await self.open_pool(pool, price)
        return ReviewAccepted(assignment_id=assignment_id or uid("as"), task_id=uid("t"),
                              pool_id=pool, project_id="proj-1", worker_id=w.user_id,
                              decided_by=MANAGER.user_id, decided_at=datetime.now(UTC))

    async def bonus(self, w: Actor, amount: int) -> None:
        await self.publish(BonusGranted(rule_id="r1", firing_id=uid("f"), worker_id=w.user_id,
                                        bonus_id=uid("b"), pool_id="pool-a", amount_minor=amount,
                                        currency=self.currency), producer="rules")

    async def idle(self) -> None:
        """Wait until the ledger consumers have handled everything published so far."""
        await consumers_drained(self.js, [(c.stream, c.durable) for c in self.svc.consumers],
                                timeout_s=6, interval_s=0.02)

    async def available(self, w: Actor) -> dict[str, int]:
        data = await self.call(rpc.BALANCE, rpc.BalanceRequest(actor=w))
        for b in data["balances"]:
            if b["currency"] == self.currency:
                return b
        return {"available_minor": 0, "on_hold_minor": 0, "paid_minor": 0}

    async def totals(self) -> dict[str, int]:
        data = await self.call(rpc.OWNER_DASHBOARD, rpc.DashboardRequest(actor=ADMIN))
        return next(t for t in data["totals"] if t["currency"] == self.currency)

    def events(self, subject: str, **match: Any) -> list[dict[str, Any]]:
        return [e["data"] for e in self.seen if e["type"] == subject
                and all(e["data"].get(k) == v for k, v in match.items())]




@pytest.fixture
def ledger_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def ledger(module_nats, database_url, ledger_settings) -> AsyncIterator[Ledger]:
    nats_server = module_nats
    upgrade(SERVICE_DIR, database_url)
    svc = create_service(LedgerSettings(database_url=database_url, nats_url=nats_server.url,
                                        environment="test", relay_poll_interval_s=0.05,
                                        log_json=False, **ledger_settings))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    currency = next(_CURRENCIES)
    ctx = Ledger(svc, nc, nc.jetstream(), RpcClient(nc), currency)

    async def collect(msg) -> None:
        ctx.seen.append(json.loads(msg.data))

    await nc.subscribe("ledger.>", cb=collect)
    try:
        yield ctx
    finally:
        await nc.close()
        await svc.stop()


async def wait_for(predicate, what: str) -> None:
    for _ in range(200):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_redelivered_acceptance_credits_once(ledger: Ledger) -> None:
    w = worker()
    event = await ledger.accepted(w, price=999)
    # Five envelopes with different event ids for the same assignment (business key) ...
    for _ in range(5):
        await ledger.publish(event, producer="review")
    # ... the same envelope five times with the bus dedup header (JetStream drops copies) ...
    env = new_envelope(await ledger.accepted(w, price=501), producer="review")
    for _ in range(5):
        await ledger.publish(None, producer="review", env=env)
    # ... and five times without it, so the consumer's inbox has to catch them.
    env2 = new_envelope(await ledger.accepted(w, price=10), producer="review")
    for _ in range(5):
        await ledger.publish(None, producer="review", env=env2, msg_id=False)
    await ledger.idle()

    bal = await ledger.available(w)
    assert bal["available_minor"] == 999 * 5000 // 10_000 + 501 * 5000 // 10_000 + 10 // 2
    assert bal["available_minor"] == 499 + 250 + 5
    async with ledger.svc.engine.connect() as conn:
        counts = dict((await conn.execute(
            select(transfers.c.assignment_id, func.count())
            .where(transfers.c.worker_id == w.user_id).group_by(transfers.c.assignment_id)
        )).all())
    assert counts == {event.assignment_id: 1, env.data["assignment_id"]: 1,
                      env2.data["assignment_id"]: 1}
    totals = await ledger.totals()
    assert totals["charged_minor"] == 999 + 501 + 10
    assert totals["platform_revenue_minor"] == 500 + 251 + 5
    assert totals["credited_to_workers_minor"] == 754
    await wait_for(lambda: _has(ledger, 3), "ledger.credited events")
    credited = ledger.events("ledger.credited", worker_id=w.user_id)
    assert sorted(e["amount_minor"] for e in credited) == [5, 250, 499]
    assert {e["kind"] for e in credited} == {"assignment"}
    assert all(not HIDDEN_KEY.search(k) for e in credited for k in e)


async def test_a_batch_of_credits_reads_each_pools_terms_once(ledger: Ledger) -> None:
    """One consumer batch (one unit of work) crediting three acceptances in two pools reads
    each pool's price and shares once, and credits each acceptance exactly."""
    from ledger_service import postings

    w = worker()
    a = await ledger.accepted(w, price=1000)
    b = a.model_copy(update={"assignment_id": uid("as")})
    c = await ledger.accepted(w, price=301)
    await ledger.idle()  # the pools' prices are known
    terms_reads: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().startswith("SELECT pools.price_minor"):
            terms_reads.append(sql)

    engine = ledger.svc.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        async with ledger.svc.db.consumer_unit() as uow:
            for e in (a, b, c):
                await postings.credit_accepted_assignment(
                    e, new_envelope(e, producer="review"), uow, ledger.svc.ctx)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(terms_reads) == 2
    assert (await ledger.available(w))["available_minor"] == 500 + 500 + 150


async def test_bonus_is_credited_once_per_bonus_id(ledger: Ledger) -> None:
    w = worker()
    bonus = BonusGranted(rule_id="r1", firing_id=uid("f"), worker_id=w.user_id,
                         bonus_id=uid("b"), pool_id="pool-a", amount_minor=250,
                         currency=ledger.currency)
    for _ in range(3):
        await ledger.publish(bonus, producer="rules")
    await ledger.idle()
    assert (await ledger.available(w))["available_minor"] == 250
    await wait_for(lambda: _count(ledger, "ledger.credited", 1), "ledger.credited")
    credited = ledger.events("ledger.credited", worker_id=w.user_id)
    assert [(e["kind"], e["amount_minor"]) for e in credited] == [("bonus", 250)]
    totals = await ledger.totals()
    assert (totals["charged_minor"], totals["bonuses_minor"], totals["platform_revenue_minor"]) \
        == (250, 250, 0)


async def test_an_event_the_ledger_refuses_goes_to_the_dlq_not_the_books(ledger: Ledger) -> None:
    # default max_deliver (5): a refused value is dead-lettered on its first delivery
    dead: list[Any] = []

    async def collect(msg) -> None:
        dead.append(msg)

    await ledger.nc.subscribe("dlq.ledger.pool-opened", cb=collect)
    w = worker()
    # the money of an acceptance enters the ledger with its pool's opening
    pool = uid("pool")
    bad = PoolOpened.model_construct(pool_id=pool, project_id="proj-1", price_minor=100,
                                     currency="rub", opened_at=datetime.now(UTC))
    env = await ledger.publish(bad, producer="tasks")
    await wait_for(lambda: _true(any(json.loads(m.data)["event_id"] == env.event_id
                                     for m in dead)), "the dead letter")
    msg = next(m for m in dead if json.loads(m.data)["event_id"] == env.event_id)
    assert msg.headers["Dlq-Reason"] == "unprocessable"
    assert msg.headers["Dlq-Deliveries"] == "1"
    assert "currency" in msg.headers["Dlq-Error-Message"]
    assert (await ledger.available(w))["available_minor"] == 0
    async with ledger.svc.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(transfers).where(
            transfers.c.worker_id == w.user_id))).scalar() == 0
        assert (await conn.execute(select(func.count()).select_from(pools))).scalar() == 0
    # a share may wait for the opening; the pool still has no price, so nothing is credited
    await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id=pool, share=0.5))
    async with ledger.svc.engine.connect() as conn:
        row = (await conn.execute(select(pools).where(pools.c.pool_id == pool))).one()
    assert (row.price_minor, row.currency, row.share_bps) == (None, None, 5000)


async def test_a_credit_waits_for_the_pools_price_and_the_price_stays_frozen(
        ledger: Ledger) -> None:
    w = worker()
    pool = uid("pool")
    early = ReviewAccepted(assignment_id=uid("as"), task_id=uid("t"), pool_id=pool,
                           project_id="proj-1", worker_id=w.user_id,
                           decided_by=MANAGER.user_id, decided_at=datetime.now(UTC))
    await ledger.publish(early, producer="review")  # before the pool's opening arrived
    await asyncio.sleep(0.5)
    assert (await ledger.available(w))["available_minor"] == 0
    info = await ledger.js.consumer_info("REVIEW", "ledger__credit-accepted")
    assert info.num_ack_pending == 1  # waiting in place, neither lost nor dead-lettered
    await ledger.open_pool(pool, 1001)
    await ledger.idle()
    assert (await ledger.available(w))["available_minor"] == 500

    dead: list[Any] = []

    async def collect(msg) -> None:
        dead.append(msg)

    await ledger.nc.subscribe("dlq.ledger.pool-opened", cb=collect)
    await ledger.open_pool(pool, 1001)  # re-opened: the same price, nothing changes
    repriced = await ledger.publish(PoolOpened(
        pool_id=pool, project_id="proj-1", price_minor=5000, currency=ledger.currency,
        opened_at=datetime.now(UTC)), producer="tasks")
    await wait_for(lambda: _true(any(json.loads(m.data)["event_id"] == repriced.event_id
                                     for m in dead)), "the refused re-pricing")
    await ledger.publish(await ledger.accepted(w, price=1001, pool=pool), producer="review")
    await ledger.idle()
    assert (await ledger.available(w))["available_minor"] == 1000
    async with ledger.svc.engine.connect() as conn:
        assert (await conn.execute(select(pools.c.price_minor).where(
            pools.c.pool_id == pool))).scalar() == 1001


async def _true(value: bool) -> bool:
    return value


async def _has(ledger: Ledger, n: int) -> bool:
    return len(ledger.events("ledger.credited")) >= n


async def test_pool_share_and_default_share_split_exactly(ledger: Ledger) -> None:
    w = worker()
    pool_a, pool_b = uid("pool"), uid("pool")
    await ledger.open_pool(pool_a, 999)
    await ledger.idle()
    await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id=pool_a, share=0.7))
    await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id=None, share="0.25"))
    await ledger.publish(await ledger.accepted(w, price=999, pool=pool_a), producer="review")
    await ledger.publish(await ledger.accepted(w, price=1001, pool=pool_b), producer="review")
    await ledger.idle()
    bal = await ledger.available(w)
    assert bal["available_minor"] == 699 + 250
    totals = await ledger.totals()
    assert totals["platform_revenue_minor"] == 300 + 751
    assert totals["charged_minor"] == 2000
    view = await ledger.call(rpc.GET_SHARE, rpc.GetShare(actor=ADMIN, pool_id=pool_b))
    assert view["source"] == "default" and view["share_bps"] == 2500 and view["share"] == "0.25"
    view = await ledger.call(rpc.GET_SHARE, rpc.GetShare(actor=ADMIN, pool_id=pool_a))
    assert view["source"] == "pool" and view["share_bps"] == 7000
    shares = await ledger.call(rpc.LIST_SHARES, rpc.ListShares(actor=ADMIN))
    assert shares["default"]["share_bps"] == 2500
    assert [p["pool_id"] for p in shares["pools"]] == [pool_a]


async def test_share_is_admin_only_validated_and_audited(ledger: Ledger) -> None:
    pool = uid("pool")
    for actor in (worker(), MANAGER):
        for spec, req in (
            (rpc.GET_SHARE, rpc.GetShare(actor=actor, pool_id=pool)),
            (rpc.SET_SHARE, rpc.SetShare(actor=actor, pool_id=pool, share=0.9)),
            (rpc.LIST_SHARES, rpc.ListShares(actor=actor)),
            (rpc.SHARE_AUDIT, rpc.ShareAuditRequest(actor=actor)),
            (rpc.OWNER_DASHBOARD, rpc.DashboardRequest(actor=actor)),
            (rpc.WORKER_SUMMARY, rpc.WorkerSummaryRequest(actor=actor)),
            (rpc.CHECK_CONSISTENCY, rpc.ConsistencyRequest(actor=actor)),
            (rpc.LIST_PAYOUTS, rpc.ListPayouts(actor=actor)),
        ):
            err = await ledger.error(spec, req)
            assert (err.status, err.code) == (403, "forbidden"), spec.subject
    initial = await ledger.call(rpc.GET_SHARE, rpc.GetShare(actor=ADMIN, pool_id=None))
    assert initial == {**initial, "source": "built_in", "share_bps": 5000, "share": "0.5"}
    await ledger.open_pool(pool, 100)
    await ledger.idle()

    await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id=pool, share=0.7))
    other_admin = Actor(user_id="owner-2", role="admin")
    view = await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=other_admin, pool_id=pool,
                                                         share="0.6525"))
    assert view["share_bps"] == 6525 and view["share"] == "0.6525"
    for bad, code in ((1.5, "share_out_of_range"), ("-0.1", "share_out_of_range"),
                      (0.12345, "share_too_precise"), ("abc", "invalid_share")):
        err = await ledger.error(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id=pool,
                                                             share=bad))
        assert (err.status, err.code) == (422, code), bad
        assert err.message
    err = await ledger.error(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id="*", share=0.5))
    assert err.code == "invalid_pool_id"

    audit = await ledger.call(rpc.SHARE_AUDIT, rpc.ShareAuditRequest(actor=ADMIN, pool_id=pool))
    assert audit["total"] == 2
    newest, oldest = audit["items"]
    assert (oldest["old_share_bps"], oldest["new_share_bps"], oldest["changed_by"]) == (
        None, 7000, "owner-1")
    assert (newest["old_share_bps"], newest["new_share_bps"], newest["changed_by"]) == (
        7000, 6525, "owner-2")
    assert newest["old_share"] == "0.7" and newest["new_share"] == "0.6525"
    assert datetime.fromisoformat(newest["changed_at"]).tzinfo is not None
    # The audit is append-only in the database itself.
    async with ledger.svc.engine.connect() as conn:
        with pytest.raises(DBAPIError):
            await conn.execute(text("DELETE FROM share_audit"))


async def test_the_fair_pay_floor_is_admin_only_set_replaced_and_turned_off(
        ledger: Ledger) -> None:
    for actor in (worker(), MANAGER):
        for spec, req in (
            (rpc.LIST_FAIR_PAY_FLOORS, rpc.ListFairPayFloors(actor=actor)),
            (rpc.SET_FAIR_PAY_FLOOR, rpc.SetFairPayFloor(actor=actor, currency="NOK",
                                                         floor_minor_per_hour=1)),
        ):
            err = await ledger.error(spec, req)
            assert (err.status, err.code) == (403, "forbidden"), spec.subject

    def nok(found: dict[str, Any]) -> list[dict[str, Any]]:
        return [f for f in found["items"] if f["currency"] == "NOK"]

    set_ = rpc.SET_FAIR_PAY_FLOOR
    assert await ledger.call(set_, rpc.SetFairPayFloor(
        actor=ADMIN, currency="NOK", floor_minor_per_hour=30000)) == {
        "currency": "NOK", "old_minor_per_hour": None, "new_minor_per_hour": 30000}
    assert (await ledger.call(set_, rpc.SetFairPayFloor(
        actor=ADMIN, currency="NOK", floor_minor_per_hour=45000)))["old_minor_per_hour"] == 30000
    [floor] = nok(await ledger.call(rpc.LIST_FAIR_PAY_FLOORS, rpc.ListFairPayFloors(actor=ADMIN)))
    assert (floor["floor_minor_per_hour"], floor["updated_by"]) == (45000, ADMIN.user_id)
    off = await ledger.call(set_, rpc.SetFairPayFloor(actor=ADMIN, currency="NOK",
                                                      floor_minor_per_hour=None))
    assert (off["old_minor_per_hour"], off["new_minor_per_hour"]) == (45000, None)
    assert nok(await ledger.call(rpc.LIST_FAIR_PAY_FLOORS,
                                 rpc.ListFairPayFloors(actor=ADMIN))) == []


async def test_payout_request_approve_and_reject(ledger: Ledger) -> None:
    w = worker()
    await ledger.bonus(w, 100)
    await ledger.idle()
    assert (await ledger.available(w))["available_minor"] == 100

    p1 = await ledger.call(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=w, amount_minor=30, comment="card 4111 **** 1111"))
    assert p1["status"] == "pending" and p1["currency"] == ledger.currency
    bal = await ledger.available(w)
    assert (bal["available_minor"], bal["on_hold_minor"], bal["paid_minor"]) == (70, 30, 0)

    # only admins decide, only pending payouts can be decided
    err = await ledger.error(rpc.APPROVE_PAYOUT, rpc.DecidePayout(actor=w,
                                                                  payout_id=p1["payout_id"]))
    assert (err.status, err.code) == (403, "forbidden")
    approved = await ledger.call(rpc.APPROVE_PAYOUT, rpc.DecidePayout(
        actor=ADMIN, payout_id=p1["payout_id"]))
    assert approved["status"] == "approved" and approved["decided_by"] == ADMIN.user_id
    for spec in (rpc.APPROVE_PAYOUT, rpc.REJECT_PAYOUT):
        err = await ledger.error(spec, rpc.DecidePayout(actor=ADMIN, payout_id=p1["payout_id"]))
        assert (err.status, err.code) == (409, "payout_not_pending")
    err = await ledger.error(rpc.APPROVE_PAYOUT, rpc.DecidePayout(actor=ADMIN, payout_id="nope"))
    assert (err.status, err.code) == (404, "payout_not_found")
    bal = await ledger.available(w)
    assert (bal["available_minor"], bal["on_hold_minor"], bal["paid_minor"]) == (70, 0, 30)

    p2 = await ledger.call(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=w, amount_minor=50, currency=ledger.currency, comment="IBAN XX00"))
    rejected = await ledger.call(rpc.REJECT_PAYOUT, rpc.DecidePayout(
        actor=ADMIN, payout_id=p2["payout_id"], comment="details are incomplete"))
    assert rejected["status"] == "rejected" and rejected["decision_comment"]
    bal = await ledger.available(w)
    assert (bal["available_minor"], bal["on_hold_minor"], bal["paid_minor"]) == (70, 0, 30)

    err = await ledger.error(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=w, amount_minor=71, comment="too much"))
    assert (err.status, err.code) == (409, "insufficient_funds")
    assert err.details["available_minor"] == 70
    err = await ledger.error(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=MANAGER, amount_minor=1, comment="x"))
    assert (err.status, err.code) == (403, "forbidden")
    err = await ledger.error(rpc.REQUEST_PAYOUT, rpc.RequestPayout(
        actor=worker(), amount_minor=1, comment="never credited"))
    assert (err.status, err.code) == (409, "insufficient_funds")
    raw = await ledger.nc.request(rpc.REQUEST_PAYOUT.subject, json.dumps(
        {"actor": w.model_dump(), "amount_minor": -5, "comment": "x"}).encode(), timeout=5)
    reply = json.loads(raw.data)
    assert not reply["ok"] and reply["error"]["code"] == "validation_error"
    assert reply["error"]["status"] == 422

    mine = await ledger.call(rpc.MY_PAYOUTS, rpc.MyPayouts(actor=w))
    assert mine["total"] == 2
    pending_all = await ledger.call(rpc.LIST_PAYOUTS, rpc.ListPayouts(
        actor=ADMIN, worker_id=w.user_id, status="rejected"))
    assert [p["payout_id"] for p in pending_all["items"]] == [p2["payout_id"]]

    hist = await ledger.call(rpc.HISTORY, rpc.HistoryRequest(actor=w, page={"limit": 3}))
    assert hist["total"] == 1 + 2 + 2 + 2 + 2  # bonus, hold, paid, hold, release legs
    assert len(hist["items"]) == 3
    kinds = [(i["kind"], i["account"], i["amount_minor"]) for i in hist["items"]]
    assert kinds[0][0] == "payout_release"
    full = await ledger.call(rpc.HISTORY, rpc.HistoryRequest(actor=w, page={"limit": 50}))
    assert ("bonus", "available", 100) in [(i["kind"], i["account"], i["amount_minor"])
                                           for i in full["items"]]

    await wait_for(lambda: _count(ledger, "ledger.payout.rejected", 1), "payout events")
    assert len(ledger.events("ledger.payout.requested", worker_id=w.user_id)) == 2
    assert ledger.events("ledger.payout.approved", payout_id=p1["payout_id"])[0][
        "amount_minor"] == 30
    assert ledger.events("ledger.payout.rejected", payout_id=p2["payout_id"])[0][
        "comment"] == "details are incomplete"

    summary = await ledger.call(rpc.WORKER_SUMMARY, rpc.WorkerSummaryRequest(
        actor=ADMIN, worker_id=w.user_id))
    assert summary["items"] == [{"worker_id": w.user_id, "currency": ledger.currency,
                                 "available_minor": 70, "on_hold_minor": 0, "paid_minor": 30,
                                 "credited_minor": 100, "credits": 0, "bonuses": 1}]
    totals = await ledger.totals()
    assert (totals["bonuses_minor"], totals["paid_minor"], totals["available_minor"],
            totals["platform_revenue_minor"]) == (100, 30, 70, 0)


async def _count(ledger: Ledger, subject: str, n: int) -> bool:
    return len(ledger.events(subject)) >= n


async def test_concurrent_payouts_never_overdraw(ledger: Ledger) -> None:
    """50 concurrent requests of 30 against 100: three holds, 10 left, 47 refusals."""
    for via_bus in (True, False):
        w = worker()
        await ledger.bonus(w, 100)
        await ledger.idle()
        req = rpc.RequestPayout(actor=w, amount_minor=30, comment="card")

        async def one(req: rpc.RequestPayout = req, via_bus: bool = via_bus) -> str:
            if via_bus:
                try:
                    await ledger.client.call(rpc.REQUEST_PAYOUT, req)
                    return "held"
                except RpcCallError as exc:
                    return exc.error.code
            # straight into the use case: 50 transactions race on the database
            try:
                await payouts.request_payout(req, ledger.svc.ctx)
                return "held"
            except Exception as exc:
                return getattr(exc, "code", repr(exc))

        outcomes = await asyncio.gather(*(one() for _ in range(50)))
        assert outcomes.count("held") == 3, outcomes
        assert outcomes.count("insufficient_funds") == 47, outcomes
        bal = await ledger.available(w)
        assert (bal["available_minor"], bal["on_hold_minor"]) == (10, 90)
    report = await ledger.call(rpc.CHECK_CONSISTENCY, rpc.ConsistencyRequest(actor=ADMIN))
    assert report["ok"], report["findings"]


async def test_payout_idempotency_key_holds_once_even_when_retried_concurrently(
        ledger: Ledger) -> None:
    w = worker()
    await ledger.bonus(w, 100)
    await ledger.idle()
    req = rpc.RequestPayout(actor=w, amount_minor=30, comment="card", idempotency_key="k-1")

    async def one() -> str:
        try:
            return (await ledger.client.call(rpc.REQUEST_PAYOUT, req)).payout_id
        except RpcCallError as exc:
            return exc.error.code

    # ten retries of one request race each other: one hold, every answer the same payout
    ids = await asyncio.gather(*(one() for _ in range(10)))
    assert len(set(ids)) == 1 and ids[0] not in ("insufficient_funds", "internal"), ids
    bal = await ledger.available(w)
    assert (bal["available_minor"], bal["on_hold_minor"]) == (70, 30)
    # a later retry still gets it; the same key for another request is refused
    again = await ledger.call(rpc.REQUEST_PAYOUT, req)
    assert again["payout_id"] == ids[0] and again["status"] == "pending"
    err = await ledger.error(rpc.REQUEST_PAYOUT, req.model_copy(update={"amount_minor": 31}))
    assert (err.status, err.code) == (409, "idempotency_key_reused")
    assert err.details == {"payout_id": ids[0]}
    # keys are per worker, and requests without a key are never deduplicated
    other = worker()
    await ledger.bonus(other, 50)
    await ledger.idle()
    theirs = await ledger.call(rpc.REQUEST_PAYOUT, req.model_copy(update={"actor": other}))
    assert theirs["payout_id"] != ids[0]
    plain = rpc.RequestPayout(actor=w, amount_minor=10, comment="card")
    a = await ledger.call(rpc.REQUEST_PAYOUT, plain)
    b = await ledger.call(rpc.REQUEST_PAYOUT, plain)
    assert a["payout_id"] != b["payout_id"]
    bal = await ledger.available(w)
    assert (bal["available_minor"], bal["on_hold_minor"]) == (50, 50)


async def test_every_transfer_sums_to_zero_and_the_database_guards_it(ledger: Ledger) -> None:
    w = worker()
    for price in (1, 3, 999, 12345):
        await ledger.publish(await ledger.accepted(w, price=price), producer="review")
    await ledger.bonus(w, 7)
    await ledger.idle()
    p = await ledger.call(rpc.REQUEST_PAYOUT, rpc.RequestPayout(actor=w, amount_minor=5,
                                                                comment="x"))
    await ledger.call(rpc.APPROVE_PAYOUT, rpc.DecidePayout(actor=ADMIN, payout_id=p["payout_id"]))

    async with ledger.svc.engine.connect() as conn:
        sums = (await conn.execute(
            select(entries.c.transfer_id, func.sum(entries.c.amount_minor))
            .join(transfers, transfers.c.transfer_id == entries.c.transfer_id)
            .where(transfers.c.worker_id == w.user_id)
            .group_by(entries.c.transfer_id))).all()
        assert len(sums) == 4 + 1 + 2 and all(total == 0 for _, total in sums)
    report = await ledger.call(rpc.CHECK_CONSISTENCY, rpc.ConsistencyRequest(actor=ADMIN))
    assert report["ok"] and report["findings"] == []
    assert report["transfers_checked"] >= 7 and report["entries_checked"] >= 15

    acc = f"worker_available:{ledger.currency}:{w.user_id}"
    tid = sums[0][0]
    # An unbalanced statement, an edit and a deletion are refused by the database itself.
    for sql in (
        f"INSERT INTO entries (transfer_id, account_id, currency, amount_minor, created_at) "
        f"VALUES ('{tid}', '{acc}', '{ledger.currency}', 5, now())",
        "UPDATE entries SET amount_minor = amount_minor + 1",
        "DELETE FROM transfers",
        "UPDATE accounts SET currency = 'XXX'",
        "UPDATE pools SET price_minor = price_minor + 1",  # a pool's price is frozen
        "UPDATE pools SET currency = 'XXX'",
        "DELETE FROM pools",
        "TRUNCATE share_audit",
    ):
        async with ledger.svc.engine.begin() as conn:
            with pytest.raises(DBAPIError):
                await conn.execute(text(sql))
            await conn.rollback()
    # A negative worker balance is refused by the CHECK.
    async with ledger.svc.engine.begin() as conn:
        with pytest.raises(DBAPIError):
            await conn.execute(text(f"UPDATE balances SET balance_minor = -1 "
                                    f"WHERE account_id = '{acc}'"))
        await conn.rollback()
    # The consistency check finds a stored balance that drifted from its entries.
    async with ledger.svc.engine.begin() as conn:
        await conn.execute(text(f"UPDATE balances SET balance_minor = balance_minor + 1 "
                                f"WHERE account_id = '{acc}'"))
    report = await ledger.call(rpc.CHECK_CONSISTENCY, rpc.ConsistencyRequest(actor=ADMIN))
    assert not report["ok"]
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [("balance_mismatch", acc)]


async def test_worker_and_manager_views_never_reveal_share_or_price(ledger: Ledger) -> None:
    for model in (rpc.Balance, rpc.History, rpc.Payout, rpc.Payouts):
        for name, _ in _fields(model):
            assert not HIDDEN_KEY.search(name), f"{model.__name__}.{name}"
    w = worker()
    await ledger.open_pool("pool-x", 1000)
    await ledger.idle()
    await ledger.call(rpc.SET_SHARE, rpc.SetShare(actor=ADMIN, pool_id="pool-x", share=0.8))
    await ledger.publish(await ledger.accepted(w, price=1000, pool="pool-x"), producer="review")
    await ledger.idle()
    await ledger.call(rpc.REQUEST_PAYOUT, rpc.RequestPayout(actor=w, amount_minor=100,
                                                            comment="card"))
    payloads = [
        await ledger.call(rpc.BALANCE, rpc.BalanceRequest(actor=w)),
        await ledger.call(rpc.HISTORY, rpc.HistoryRequest(actor=w)),
        await ledger.call(rpc.MY_PAYOUTS, rpc.MyPayouts(actor=w)),
    ]
    assert not _hidden_keys(payloads)
    leaves = set(_leaves(payloads))
    assert not leaves & {1000, 200, 8000, 0.8, "0.8"}  # gross, platform part, share
    assert payloads[1]["items"][-1]["amount_minor"] == 800  # the credit the worker sees
    # nobody but an admin looks at another worker's money
    for actor in (worker(), MANAGER):
        err = await ledger.error(rpc.BALANCE, rpc.BalanceRequest(actor=actor, worker_id=w.user_id))
        assert (err.status, err.code) == (403, "forbidden")
        err = await ledger.error(rpc.HISTORY, rpc.HistoryRequest(actor=actor, worker_id=w.user_id))
        assert (err.status, err.code) == (403, "forbidden")
    admin_view = await ledger.call(rpc.BALANCE, rpc.BalanceRequest(actor=ADMIN,
                                                                   worker_id=w.user_id))
    assert admin_view["balances"][0]["available_minor"] == 700


def _fields(model, seen=None):
    seen = seen or set()
    if model in seen:
        return
    seen.add(model)
    for name, f in model.model_fields.items():
        yield name, f
        for arg in (getattr(f.annotation, "__args__", None) or (f.annotation,)):
            if isinstance(arg, type) and hasattr(arg, "model_fields"):
                yield from _fields(arg, seen)


def _hidden_keys(data) -> list[str]:
    if isinstance(data, dict):
        return [k for k in data if HIDDEN_KEY.search(k)] + [
            x for v in data.values() for x in _hidden_keys(v)]
    if isinstance(data, list):
        return [x for v in data for x in _hidden_keys(v)]
    return []


def _leaves(data):
    if isinstance(data, dict):
        for v in data.values():
            yield from _leaves(v)
    elif isinstance(data, list):
        for v in data:
            yield from _leaves(v)
    else:
        yield data


async def test_money_comes_in_as_strict_bounded_integers_of_a_booked_currency(
        ledger: Ledger) -> None:
    w = worker()

    async def refused(spec, body: dict[str, Any]) -> dict[str, Any]:
        raw = await ledger.nc.request(spec.subject, json.dumps(body).encode(), timeout=5)
        reply = json.loads(raw.data)
        assert not reply["ok"], body
        return reply["error"]

    payout = {"actor": w.model_dump(), "comment": "card"}
    for bad in ({"amount_minor": True}, {"amount_minor": "100"}, {"amount_minor": 1.0},
                {"amount_minor": 10**12 + 1}, {"amount_minor": 0},
                {"amount_minor": 1, "currency": "XXX"}):
        err = await refused(rpc.REQUEST_PAYOUT, {**payout, **bad})
        assert (err["status"], err["code"]) == (422, "validation_error"), bad
    admin = {"actor": ADMIN.model_dump(), "pool_id": None}
    for bad in (True, False, None, [0.5]):
        err = await refused(rpc.SET_SHARE, {**admin, "share": bad})
        assert (err["status"], err["code"]) == (422, "validation_error"), bad
    view = await ledger.call(rpc.GET_SHARE, rpc.GetShare(actor=ADMIN))
    assert view["source"] == "built_in"  # nothing of the refused requests was applied

"""Ledger handlers on an in-memory store: no database, no bus, milliseconds.

The fake keeps what the handlers rely on of the real store (one credit per business key,
no overdraft, one payout per Idempotency-Key) and, like a transaction, forgets what a
failing unit of work changed; the integration tests prove the SQL does the same.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelope import Envelope, new_envelope
from contracts.events import BonusGranted, PoolOpened, ReviewAccepted
from contracts.rpc import Actor
from contracts.rpc import ledger as rpc
from ledger_service import payouts, postings, reports, shares
from ledger_service.domain import (
    DEFAULT_SHARE_KEY,
    IdempotencyKeyTaken,
    InsufficientFunds,
    Leg,
    ShareSetting,
    Transfer,
    balanced_legs,
)
from ledger_service.settings import LedgerSettings
from ledger_service.store import PoolTerms
from servicekit.errors import NotReady, ServiceError, UnprocessableEvent
from servicekit.rpc import dispatch
from servicekit.testing.fakes import FakeDatabase, fake_context
from servicekit.uow import UnitOfWork

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ADMIN = Actor(user_id="owner", role="admin")
MANAGER = Actor(user_id="m1", role="manager")
W1 = Actor(user_id="w1", role="worker")


class FakeLedgerStore:
    """The ledger store's methods over plain dicts (``state``, copied per transaction)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"pools": {}, "default": None, "audit": [],
                                      "transfers": [], "balances": {}, "payouts": {},
                                      "keys": {}}

    @property
    def s(self) -> dict[str, Any]:
        return self.state

    # pools and shares
    async def open_pool(self, *, pool_id, project_id, price_minor, currency, opened_at):
        pool = self.s["pools"].setdefault(pool_id, {"price": None, "currency": None,
                                                    "share": None})
        if pool["price"] is None:  # a share set before the opening made the row
            pool["price"], pool["currency"] = price_minor, currency
        return pool["price"], pool["currency"]

    async def pool_budget_of(self, pool_id, *, lock=False):
        return None  # budgets are tested on the real store (test_budgets.py)

    async def pool_terms(self, pool_id):
        pool = self.s["pools"].get(pool_id)
        if pool is None or pool["price"] is None:
            return None
        return PoolTerms(pool["price"], pool["currency"], pool["share"], self.s["default"])

    async def shares_of(self, pool_id):
        pool = self.s["pools"].get(pool_id) if pool_id else None
        return (pool["share"] if pool else None), self.s["default"]

    async def set_pool_share(self, pool_id, share_bps, *, by, now):
        pool = self.s["pools"].setdefault(pool_id, {"price": None, "currency": None,
                                                    "share": None})
        old = pool["share"].share_bps if pool["share"] else None
        pool["share"] = ShareSetting(share_bps, "pool", now, by)
        self._audit(pool_id, old, share_bps, by, now)

    async def set_default_share(self, share_bps, *, by, now):
        old = self.s["default"].share_bps if self.s["default"] else None
        self.s["default"] = ShareSetting(share_bps, "default", now, by)
        self._audit(DEFAULT_SHARE_KEY, old, share_bps, by, now)

    def _audit(self, key: str, old: int | None, new: int, by: str, now: datetime) -> None:
        self.s["audit"].append((key, old, new, by, now))

    async def own_shares(self):
        return sorted((p, v["share"]) for p, v in self.s["pools"].items() if v["share"])

    async def share_audit(self, pool_key, *, limit, offset):
        rows = [a for a in reversed(self.s["audit"]) if pool_key in (None, a[0])]
        return [rpc.ShareChange(
            audit_id=i, pool_id=None if key == DEFAULT_SHARE_KEY else key,
            old_share=None if old is None else str(old / 10_000), old_share_bps=old,
            new_share=str(new / 10_000), new_share_bps=new, changed_by=by, changed_at=at)
            for i, (key, old, new, by, at) in enumerate(rows)][offset:offset + limit], len(rows)

    # posting
    def _apply(self, transfer: Transfer, legs: list[Leg]) -> None:
        moves = {leg.account.account_id: leg.amount_minor for leg in legs
                 if leg.account.keeps_balance}
        b = self.s["balances"]
        if any(b.get(acc, 0) + amount < 0 for acc, amount in moves.items()):
            raise InsufficientFunds(transfer.transfer_id)
        for acc, amount in moves.items():
            b[acc] = b.get(acc, 0) + amount
        self.s["transfers"].append((transfer, legs))

    async def post_credit(self, transfer, legs, *, unique_key):
        key = getattr(transfer, unique_key)
        if any(getattr(t, unique_key) == key for t, _ in self.s["transfers"]):
            return False
        self._apply(transfer, balanced_legs(legs))
        return True

    async def post_transfer(self, transfer, legs):
        self._apply(transfer, balanced_legs(legs))

    # balances
    async def worker_balances(self, worker_id):
        out: dict[str, dict[str, int]] = {}
        for acc, amount in self.s["balances"].items():
            kind, currency, owner = acc.split(":")
            if owner == worker_id:
                out.setdefault(currency, dict.fromkeys(
                    ("worker_available", "worker_hold", "worker_paid"), 0))[kind] = amount
        return out

    async def available_minor(self, worker_id, currency):
        return self.s["balances"].get(f"worker_available:{currency}:{worker_id}", 0)

    async def history(self, worker_id, *, currency, limit, offset):
        self.asked = ("history", worker_id, currency, limit, offset)
        return [], 0

    # payouts
    async def payout_by_key(self, worker_id, key):
        payout_id = self.s["keys"].get((worker_id, key))
        return None if payout_id is None else self.s["payouts"][payout_id]

    async def add_payout(self, payout, *, idempotency_key):
        if idempotency_key is not None:
            if (payout.worker_id, idempotency_key) in self.s["keys"]:
                raise IdempotencyKeyTaken(idempotency_key)
            self.s["keys"][(payout.worker_id, idempotency_key)] = payout.payout_id
        self.s["payouts"][payout.payout_id] = payout

    async def decide_payout(self, payout_id, *, status, by, now, comment):
        p = self.s["payouts"].get(payout_id)
        if p is None or p.status != "pending":
            return None
        p = self.s["payouts"][payout_id] = p.model_copy(update={
            "status": status, "decided_by": by, "decided_at": now, "decision_comment": comment})
        return p

    async def payout_status(self, payout_id):
        p = self.s["payouts"].get(payout_id)
        return None if p is None else p.status

    async def list_payouts(self, *, worker_id, status, limit, offset):
        found = [p for p in self.s["payouts"].values()
                 if worker_id in (None, p.worker_id) and status in (None, p.status)]
        return found[offset:offset + limit], len(found)

    # reports
    async def dashboard(self):
        return rpc.Dashboard(totals=[], counts=rpc.DashboardCounts(
            assignment_credits=len(self.s["transfers"]), bonuses=0, workers=0,
            payouts_pending=0, payouts_approved=0, payouts_rejected=0))

    async def worker_summary(self, *, worker_id, limit, offset):
        self.asked = ("summary", worker_id, limit, offset)
        return [], 0

    async def consistency(self, *, now):
        return rpc.Consistency(ok=True, transfers_checked=len(self.s["transfers"]),
                               entries_checked=0, accounts_checked=0, findings=[],
                               checked_at=now)


class TransactionalFake(FakeDatabase[FakeLedgerStore]):
    """A unit of work that fails leaves the store as it found it (as a rollback does)."""

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, autocommit: bool = False
                           ) -> AsyncIterator[UnitOfWork[FakeLedgerStore]]:
        before = copy.deepcopy(self.store.state)
        try:
            async with super().unit_of_work(autocommit=autocommit) as uow:
                yield uow
        except BaseException:
            self.store.state = before
            raise


def make(**settings: Any) -> tuple[Any, FakeLedgerStore]:
    store = FakeLedgerStore()
    ctx = fake_context(LedgerSettings(database_url="postgresql://unused/x", **settings), store,
                       clock=lambda: T0)
    ctx.db = TransactionalFake(store, producer="ledger")
    return ctx, store


async def consume(ctx: Any, handler: Any, event: Any, env: Envelope | None = None) -> Envelope:
    env = env or new_envelope(event, producer="test")
    async with ctx.db.consumer_unit() as uow:
        await handler(event, env, uow, ctx)
    return env


def opened(pool: str = "p1", price: int = 1001, currency: str = "RUB") -> PoolOpened:
    return PoolOpened(pool_id=pool, project_id="pr1", price_minor=price, currency=currency,
                      opened_at=T0)


def accepted(assignment: str = "a1", pool: str = "p1", worker: str = "w1") -> ReviewAccepted:
    return ReviewAccepted(assignment_id=assignment, task_id="t1", pool_id=pool,
                          project_id="pr1", worker_id=worker, decided_by="m1", decided_at=T0)


def bonus(bonus_id: str = "b1", amount: int = 100, worker: str = "w1") -> BonusGranted:
    return BonusGranted(rule_id="r1", firing_id="f1", worker_id=worker, bonus_id=bonus_id,
                        pool_id="p1", amount_minor=amount, currency="RUB")


async def refusal(call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as exc:
        await call
    return exc.value


def available(store: FakeLedgerStore, worker: str = "w1", currency: str = "RUB") -> int:
    return int(store.state["balances"].get(f"worker_available:{currency}:{worker}", 0))


# ------------------------------------------------------------------------ roles


async def test_roles_are_refused_before_any_handler_runs() -> None:
    async def never(_req: Any) -> Any:
        raise AssertionError("the handler must not run")

    admin_only = [rpc.APPROVE_PAYOUT, rpc.REJECT_PAYOUT, rpc.LIST_PAYOUTS, rpc.GET_SHARE,
                  rpc.SET_SHARE, rpc.LIST_SHARES, rpc.SHARE_AUDIT, rpc.OWNER_DASHBOARD,
                  rpc.WORKER_SUMMARY, rpc.CHECK_CONSISTENCY]
    body = {"payout_id": "p", "share": 0.5, "amount_minor": 1, "comment": "x"}
    cases = [(spec, who) for spec in admin_only for who in (W1, MANAGER)]
    cases += [(rpc.REQUEST_PAYOUT, MANAGER), (rpc.REQUEST_PAYOUT, ADMIN),
              (rpc.BALANCE, MANAGER), (rpc.HISTORY, MANAGER)]
    for spec, who in cases:
        fields = spec.request.model_fields
        req = {"actor": who.model_dump(), **{k: v for k, v in body.items() if k in fields}}
        reply = json.loads(await dispatch(spec, never, json.dumps(req).encode()))
        assert (reply["error"]["status"], reply["error"]["code"]) == (403, "forbidden"), \
            (spec.subject, who.role)


# -------------------------------------------------------------------- postings


async def test_a_pools_price_is_kept_once_and_stays_frozen() -> None:
    ctx, store = make()
    await consume(ctx, postings.on_pool_opened, opened(price=1001))
    await consume(ctx, postings.on_pool_opened, opened(price=1001))  # re-opened
    with pytest.raises(UnprocessableEvent):
        await consume(ctx, postings.on_pool_opened, opened(price=5))
    with pytest.raises(UnprocessableEvent):
        await consume(ctx, postings.on_pool_opened, opened(price=1001, currency="USD"))
    assert (store.state["pools"]["p1"]["price"], store.state["pools"]["p1"]["currency"]) == \
        (1001, "RUB")
    assert ctx.db.events == []


async def test_a_credit_waits_until_the_ledger_knows_the_pools_price() -> None:
    ctx, store = make()
    with pytest.raises(NotReady):
        await consume(ctx, postings.credit_accepted_assignment, accepted())
    assert store.state["transfers"] == [] and ctx.db.events == []
    await consume(ctx, postings.on_pool_opened, opened(price=1001))
    await consume(ctx, postings.credit_accepted_assignment, accepted())
    assert available(store) == 500  # the built-in share, 50 %, rounded down


async def test_an_acceptance_is_credited_once_however_often_it_arrives() -> None:
    ctx, store = make()
    await consume(ctx, postings.on_pool_opened, opened(price=999))
    event = accepted()
    env = new_envelope(event, producer="review")
    await consume(ctx, postings.credit_accepted_assignment, event, env)
    for _ in range(3):  # the same assignment under other event ids
        await consume(ctx, postings.credit_accepted_assignment, event)
    assert available(store) == 499 and len(store.state["transfers"]) == 1
    [credited] = ctx.db.events
    assert credited.type == "ledger.credited" and credited.causation_id == env.event_id
    assert (credited.data["amount_minor"], credited.data["currency"], credited.data["kind"]) \
        == (499, "RUB", "assignment")
    assert not {"price_minor", "share_bps", "platform_minor"} & set(credited.data)
    transfer, legs = store.state["transfers"][0]
    assert transfer.assignment_id == "a1" and transfer.cause_event_id == env.event_id
    assert {leg.account.kind: leg.amount_minor for leg in legs} == {
        "requester_clearing": -999, "worker_available": 499, "platform_revenue": 500}


async def test_the_pools_share_else_the_default_else_the_built_in_one_applies() -> None:
    ctx, store = make(default_share_bps=1000)
    for pool in ("own", "default", "built-in"):
        await consume(ctx, postings.on_pool_opened, opened(pool=pool, price=1000))
    await consume(ctx, postings.credit_accepted_assignment, accepted("a0", "built-in"))
    assert available(store) == 100
    await shares.set_share(rpc.SetShare(actor=ADMIN, pool_id="own", share="0.7"), ctx)
    await shares.set_share(rpc.SetShare(actor=ADMIN, pool_id=None, share=0.25), ctx)
    await consume(ctx, postings.credit_accepted_assignment, accepted("a1", "own"))
    await consume(ctx, postings.credit_accepted_assignment, accepted("a2", "default"))
    assert available(store) == 100 + 700 + 250


async def test_a_sandbox_acceptance_moves_no_money() -> None:
    ctx, store = make()
    # a sandbox pool's opening keeps no price, and its acceptance does not wait for one
    await consume(ctx, postings.on_pool_opened,
                  opened(pool="sb", price=1000).model_copy(update={"sandbox": True}))
    assert "sb" not in store.state["pools"]
    await consume(ctx, postings.credit_accepted_assignment,
                  accepted("a-sb", "sb", "owner").model_copy(update={"sandbox": True}))
    # even in a pool whose price the ledger knows, a sandbox acceptance credits nothing
    await consume(ctx, postings.on_pool_opened, opened(pool="p1", price=1000))
    await consume(ctx, postings.credit_accepted_assignment,
                  accepted("a-sb2", "p1", "owner").model_copy(update={"sandbox": True}))
    assert store.state["transfers"] == [] and store.state["balances"] == {}
    assert ctx.db.events == []  # no ledger.credited
    await consume(ctx, postings.credit_accepted_assignment, accepted("a1", "p1"))
    assert available(store) == 500 and len(store.state["transfers"]) == 1


async def test_a_bonus_is_credited_in_full_once_per_bonus_id() -> None:
    ctx, store = make()
    await consume(ctx, postings.credit_bonus, bonus(amount=250))
    await consume(ctx, postings.credit_bonus, bonus(amount=250))
    await consume(ctx, postings.credit_bonus, bonus("b2", amount=50))
    assert available(store) == 300
    assert [(e.data["kind"], e.data["amount_minor"]) for e in ctx.db.events] == [
        ("bonus", 250), ("bonus", 50)]


# --------------------------------------------------------------------- payouts


async def earned(ctx: Any, amount: int = 100, worker: str = "w1") -> None:
    await consume(ctx, postings.credit_bonus, bonus(f"b-{worker}-{amount}", amount, worker))
    ctx.db.events.clear()


def payout_request(amount: int = 30, **kw: Any) -> rpc.RequestPayout:
    return rpc.RequestPayout(actor=kw.pop("actor", W1), amount_minor=amount, comment="card",
                             **kw)


async def test_a_payout_holds_the_money_and_an_admin_pays_or_releases_it() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    p1 = await payouts.request_payout(payout_request(30), ctx)
    assert (p1.status, p1.currency, p1.requested_at) == ("pending", "RUB", T0)
    assert available(store) == 70
    assert store.state["balances"]["worker_hold:RUB:w1"] == 30
    paid = await payouts.approve_payout(rpc.DecidePayout(actor=ADMIN, payout_id=p1.payout_id),
                                        ctx)
    assert (paid.status, paid.decided_by) == ("approved", "owner")
    assert store.state["balances"]["worker_paid:RUB:w1"] == 30
    p2 = await payouts.request_payout(payout_request(50, currency="RUB"), ctx)
    back = await payouts.reject_payout(rpc.DecidePayout(actor=ADMIN, payout_id=p2.payout_id,
                                                        comment="no IBAN"), ctx)
    assert back.status == "rejected" and available(store) == 70
    assert ctx.db.event_types() == ["ledger.payout.requested", "ledger.payout.approved",
                                    "ledger.payout.requested", "ledger.payout.rejected"]
    assert ctx.db.events[-1].data["comment"] == "no IBAN"
    for decide in (payouts.approve_payout, payouts.reject_payout):
        err = await refusal(decide(rpc.DecidePayout(actor=ADMIN, payout_id=p1.payout_id), ctx))
        assert (err.status, err.code, err.details) == (409, "payout_not_pending",
                                                       {"status": "approved"})
    err = await refusal(payouts.approve_payout(rpc.DecidePayout(actor=ADMIN, payout_id="x"),
                                               ctx))
    assert (err.status, err.code) == (404, "payout_not_found")
    assert len(ctx.db.events) == 4


async def test_insufficient_funds_hold_nothing_and_say_what_is_available() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    err = await refusal(payouts.request_payout(payout_request(101), ctx))
    assert (err.status, err.code) == (409, "insufficient_funds")
    assert err.details == {"available_minor": 100, "requested_minor": 101, "currency": "RUB"}
    assert store.state["payouts"] == {} and available(store) == 100  # rolled back
    assert ctx.db.events == []
    stranger = Actor(user_id="w9", role="worker")
    err = await refusal(payouts.request_payout(payout_request(1, actor=stranger), ctx))
    assert (err.code, err.details["available_minor"]) == ("insufficient_funds", 0)
    err = await refusal(payouts.request_payout(payout_request(1, actor=stranger,
                                                              currency="RUB"), ctx))
    assert err.code == "insufficient_funds"


async def test_a_worker_with_several_currencies_must_name_one() -> None:
    ctx, _ = make()
    await earned(ctx, 100)
    await consume(ctx, postings.credit_bonus, BonusGranted(
        rule_id="r", firing_id="f", worker_id="w1", bonus_id="usd", pool_id="p1",
        amount_minor=5, currency="USD"))
    err = await refusal(payouts.request_payout(payout_request(1), ctx))
    assert (err.status, err.code, err.details) == (422, "currency_required",
                                                   {"currencies": ["RUB", "USD"]})
    usd = await payouts.request_payout(payout_request(5, currency="USD"), ctx)
    assert usd.currency == "USD"


async def test_an_idempotency_key_holds_the_money_once() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    first = await payouts.request_payout(payout_request(30, idempotency_key="k1"), ctx)
    again = await payouts.request_payout(payout_request(30, idempotency_key="k1"), ctx)
    assert again == first and available(store) == 70
    assert ctx.db.event_types() == ["ledger.payout.requested"]
    for other in ({"amount": 31}, {"currency": "USD"}):
        req = payout_request(other.get("amount", 30), idempotency_key="k1",
                             **({"currency": other["currency"]} if "currency" in other else {}))
        err = await refusal(payouts.request_payout(req, ctx))
        assert (err.status, err.code, err.details) == (409, "idempotency_key_reused",
                                                       {"payout_id": first.payout_id})
    # another worker's same key is another payout; no key never deduplicates
    await earned(ctx, 50, "w2")
    theirs = await payouts.request_payout(payout_request(
        30, idempotency_key="k1", actor=Actor(user_id="w2", role="worker")), ctx)
    assert theirs.payout_id != first.payout_id
    a = await payouts.request_payout(payout_request(10), ctx)
    b = await payouts.request_payout(payout_request(10), ctx)
    assert a.payout_id != b.payout_id and available(store) == 50


async def test_a_retry_that_loses_the_race_for_its_key_gets_the_winners_payout() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    winner = await payouts.request_payout(payout_request(30, idempotency_key="k"), ctx)
    looked = store.payout_by_key

    async def not_yet(worker_id: str, key: str) -> Any:  # the race: both looked first
        store.payout_by_key = looked  # type: ignore[method-assign]
        return None

    store.payout_by_key = not_yet  # type: ignore[method-assign]
    loser = await payouts.request_payout(payout_request(30, idempotency_key="k"), ctx)
    assert loser == winner and available(store) == 70
    assert ctx.db.event_types() == ["ledger.payout.requested"]


async def test_payout_lists_are_filtered_and_a_workers_are_their_own() -> None:
    ctx, _ = make()
    await earned(ctx, 100)
    await earned(ctx, 100, "w2")
    mine = await payouts.request_payout(payout_request(10), ctx)
    await payouts.request_payout(payout_request(10, actor=Actor(user_id="w2", role="worker")),
                                 ctx)
    own = await payouts.my_payouts(rpc.MyPayouts(actor=W1), ctx)
    assert [p.payout_id for p in own.items] == [mine.payout_id] and own.total == 1
    every = await payouts.list_payouts(rpc.ListPayouts(actor=ADMIN, status="pending"), ctx)
    assert every.total == 2
    none = await payouts.list_payouts(rpc.ListPayouts(actor=ADMIN, status="approved"), ctx)
    assert none.total == 0


# ---------------------------------------------------------------------- shares


async def test_a_share_set_before_the_pool_opens_is_kept_and_every_change_audited() -> None:
    ctx, store = make()
    view = await shares.set_share(rpc.SetShare(actor=ADMIN, pool_id="p1", share="0.6525"),
                                  ctx)
    assert (view.share, view.share_bps, view.source, view.updated_by) == (
        "0.6525", 6525, "pool", "owner")
    assert await store.pool_terms("p1") is None  # no price before the opening
    await consume(ctx, postings.on_pool_opened, opened())
    terms = await store.pool_terms("p1")
    assert terms is not None and terms.pool_share.share_bps == 6525  # the opening keeps it
    await shares.set_share(rpc.SetShare(actor=Actor(user_id="owner2", role="admin"),
                                        pool_id="p1", share=0.7), ctx)
    assert [a[:4] for a in store.state["audit"]] == [("p1", None, 6525, "owner"),
                                                     ("p1", 6525, 7000, "owner2")]
    audit = await shares.share_audit(rpc.ShareAuditRequest(actor=ADMIN, pool_id="p1"), ctx)
    assert audit.total == 2 and audit.items[0].new_share_bps == 7000
    for bad, code in ((1.5, "share_out_of_range"), ("-0.1", "share_out_of_range"),
                      (0.12345, "share_too_precise"), ("abc", "invalid_share")):
        err = await refusal(shares.set_share(rpc.SetShare(actor=ADMIN, pool_id="p1",
                                                          share=bad), ctx))
        assert (err.status, err.code) == (422, code)
    err = await refusal(shares.set_share(rpc.SetShare(actor=ADMIN, pool_id="*", share=0.5),
                                         ctx))
    assert err.code == "invalid_pool_id"
    err = await refusal(shares.get_share(rpc.GetShare(actor=ADMIN, pool_id="*"), ctx))
    assert err.code == "invalid_pool_id"
    assert len(store.state["audit"]) == 2


async def test_shares_are_read_with_where_they_come_from() -> None:
    ctx, _ = make(default_share_bps=4000)
    await consume(ctx, postings.on_pool_opened, opened("p1"))
    await consume(ctx, postings.on_pool_opened, opened("p2"))
    view = await shares.get_share(rpc.GetShare(actor=ADMIN, pool_id="p1"), ctx)
    assert (view.source, view.share_bps, view.share) == ("built_in", 4000, "0.4")
    await shares.set_share(rpc.SetShare(actor=ADMIN, share=0.3), ctx)
    await shares.set_share(rpc.SetShare(actor=ADMIN, pool_id="p2", share=1), ctx)
    assert (await shares.get_share(rpc.GetShare(actor=ADMIN, pool_id="p1"), ctx)).source == \
        "default"
    assert (await shares.get_share(rpc.GetShare(actor=ADMIN, pool_id="unknown"), ctx)
            ).share_bps == 3000
    p2 = await shares.get_share(rpc.GetShare(actor=ADMIN, pool_id="p2"), ctx)
    assert (p2.source, p2.share, p2.updated_at) == ("pool", "1", T0)
    listed = await shares.list_shares(rpc.ListShares(actor=ADMIN), ctx)
    assert listed.default.share_bps == 3000 and [p.pool_id for p in listed.pools] == ["p2"]


# --------------------------------------------------------------------- reports


async def test_a_worker_reads_their_own_money_and_only_an_admin_anyones() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    bal = await reports.balance(rpc.BalanceRequest(actor=W1), ctx)
    assert bal.worker_id == "w1" and [(b.currency, b.available_minor) for b in bal.balances] \
        == [("RUB", 100)]
    err = await refusal(reports.balance(rpc.BalanceRequest(
        actor=Actor(user_id="w2", role="worker"), worker_id="w1"), ctx))
    assert (err.status, err.code) == (403, "forbidden")
    err = await refusal(reports.history(rpc.HistoryRequest(
        actor=Actor(user_id="w2", role="worker"), worker_id="w1"), ctx))
    assert (err.status, err.code) == (403, "forbidden")
    assert (await reports.balance(rpc.BalanceRequest(actor=ADMIN, worker_id="w1"), ctx)
            ).balances[0].available_minor == 100
    await reports.history(rpc.HistoryRequest(actor=W1, currency="RUB"), ctx)
    assert store.asked == ("history", "w1", "RUB", 50, 0)
    await reports.history(rpc.HistoryRequest(actor=ADMIN, worker_id="w1"), ctx)
    assert store.asked[1] == "w1"


async def test_admin_reports_come_from_the_store() -> None:
    ctx, store = make()
    await earned(ctx, 100)
    dash = await reports.owner_dashboard(rpc.DashboardRequest(actor=ADMIN), ctx)
    assert dash.counts.assignment_credits == 1
    await reports.worker_summary(rpc.WorkerSummaryRequest(actor=ADMIN, worker_id="w1"), ctx)
    assert store.asked == ("summary", "w1", 50, 0)
    check = await reports.check_consistency(rpc.ConsistencyRequest(actor=ADMIN), ctx)
    assert check.ok and check.checked_at == T0 and check.transfers_checked == 1


# ------------------------------------------------------- money metrics (platform overview)


def money(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_credits_and_payouts_are_counted_once_committed_and_once_only() -> None:
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("ledger_credited_minor_total",
                                     {"currency": "KZT", "party": "platform"}) == 0  # at 0
    assert REGISTRY.get_sample_value("ledger_payouts_total", {"outcome": "rejected"}) is not None
    worker0 = money("ledger_credited_minor_total", currency="RUB", party="worker")
    platform0 = money("ledger_credited_minor_total", currency="RUB", party="platform")
    ctx, _store = make()
    await consume(ctx, postings.on_pool_opened, opened(price=999))
    event = accepted("a-metrics")
    for _ in range(3):  # credited once however often it arrives
        await consume(ctx, postings.credit_accepted_assignment, event)
    await consume(ctx, postings.credit_bonus, bonus("b-metrics", amount=250))
    assert money("ledger_credited_minor_total", currency="RUB", party="worker") == \
        worker0 + 499 + 250
    assert money("ledger_credited_minor_total", currency="RUB", party="platform") == \
        platform0 + 500
    counts0 = {o: money("ledger_payouts_total", outcome=o)
               for o in ("requested", "approved", "rejected")}
    p1 = await payouts.request_payout(payout_request(30, idempotency_key="k-metrics"), ctx)
    await payouts.request_payout(payout_request(30, idempotency_key="k-metrics"), ctx)  # replay
    await refusal(payouts.request_payout(payout_request(10_000), ctx))  # refused: not counted
    await payouts.approve_payout(rpc.DecidePayout(actor=ADMIN, payout_id=p1.payout_id), ctx)
    await refusal(payouts.reject_payout(rpc.DecidePayout(actor=ADMIN, payout_id=p1.payout_id),
                                        ctx))  # not pending any more: not counted
    assert {o: money("ledger_payouts_total", outcome=o) - counts0[o] for o in counts0} == {
        "requested": 1, "approved": 1, "rejected": 0}

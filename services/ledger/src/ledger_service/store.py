"""All of the ledger's SQL: statements built once, results as contract models or small
dataclasses.

A transfer is posted as: one ``transfers`` row (carrying the business key, so a second
credit of the same assignment or bonus is a no-op), the accounts created lazily, all legs
in ONE ``entries`` INSERT (the database checks per statement that they sum to zero), and
the worker balances moved, whose CHECK keeps them non-negative. Balance rows are changed
in account-id order so concurrent transfers lock them in the same order and cannot
deadlock. A credit is all of that in one statement.

PostgreSQL's ``sum(bigint)`` is ``numeric``: the reports turn it into Python ints, which
cannot overflow.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

import contracts.rpc.ledger as rpc
from ledger_service.budget_store import BudgetLink, BudgetStoreMixin
from ledger_service.db import (
    BALANCE_NON_NEGATIVE,
    PAYOUT_KEY_UNIQUE,
    accounts,
    balances,
    default_share,
    entries,
    payouts,
    pool_budgets,
    pools,
    share_audit,
    transfers,
)
from ledger_service.domain import (
    BALANCE_KINDS,
    BUDGET_KINDS,
    DEFAULT_SHARE_KEY,
    WORKER_KINDS,
    WORKER_VIEW,
    IdempotencyKeyTaken,
    InsufficientFunds,
    Leg,
    ShareSetting,
    Transfer,
    account_for_worker,
    balanced_legs,
    format_share,
)
from servicekit.db import insert
from servicekit.prepared import Prepared

_TRANSFER_COLS = tuple(f.name for f in dataclasses.fields(Transfer))
_LIMIT = bindparam("q_limit", type_=Integer)
_OFFSET = bindparam("q_offset", type_=Integer)


@dataclass(frozen=True)
class PoolTerms:
    """What an acceptance in a pool is credited from: its frozen price and the shares."""

    price_minor: int
    currency: str
    pool_share: ShareSetting | None
    default_share: ShareSetting | None
    budget: BudgetLink | None = None  # the requester whose budget pays, if one does


def _pool_share(bps: int | None, at: datetime | None, by: str | None) -> ShareSetting | None:
    return None if bps is None else ShareSetting(bps, "pool", at, by)


def _default_share(bps: int | None, at: datetime | None, by: str | None) -> ShareSetting | None:
    return None if bps is None else ShareSetting(bps, "default", at, by)


# --------------------------------------------------------------------- statements

_SHARE_COLS = (pools.c.share_bps, pools.c.share_updated_at, pools.c.share_updated_by,
               default_share.c.share_bps.label("d_bps"), default_share.c.updated_at,
               default_share.c.updated_by)
_POOL = bindparam("p_pool", type_=pools.c.pool_id.type)
# built once: every credit looks its pool up, with its budget link (one round trip);
# prepared on asyncpg, as the credit statement (servicekit.prepared)
_POOL_TERMS = Prepared(
    select(pools.c.price_minor, pools.c.currency, *_SHARE_COLS,
           pool_budgets.c.requester_id.label("b_requester"),
           pool_budgets.c.currency.label("b_currency"))
    .select_from(pools.outerjoin(default_share, true())
                 .outerjoin(pool_budgets, pool_budgets.c.pool_id == pools.c.pool_id))
    .where(pools.c.pool_id == _POOL))
_ONE = select(literal(1).label("one")).subquery()
_SHARES_OF = (select(*_SHARE_COLS)
              .select_from(_ONE.outerjoin(pools, pools.c.pool_id == _POOL)
                           .outerjoin(default_share, true())))
_ADD_POOL = insert(pools)
_OPEN_POOL = _ADD_POOL.on_conflict_do_update(
    index_elements=["pool_id"],
    # the first price stays (the trigger refuses another); a row made by an early share
    # gets its price now
    set_={"opened_at": func.greatest(pools.c.opened_at, _ADD_POOL.excluded.opened_at),
          "price_minor": func.coalesce(pools.c.price_minor, _ADD_POOL.excluded.price_minor),
          "currency": func.coalesce(pools.c.currency, _ADD_POOL.excluded.currency),
          "project_id": func.coalesce(pools.c.project_id, _ADD_POOL.excluded.project_id)},
).returning(pools.c.price_minor, pools.c.currency)
_KNOW_POOL = insert(pools).values(pool_id=bindparam("p_pool")).on_conflict_do_nothing(
    index_elements=["pool_id"])
_POOL_SHARE_FOR_UPDATE = (select(pools.c.share_bps).where(pools.c.pool_id == _POOL)
                          .with_for_update())
_SET_POOL_SHARE = (update(pools).where(pools.c.pool_id == _POOL)
                   .values(share_bps=bindparam("s_bps"), share_updated_by=bindparam("s_by"),
                           share_updated_at=bindparam("s_at")))
_ADD_DEFAULT = insert(default_share).on_conflict_do_nothing(index_elements=["singleton"])
_DEFAULT_FOR_UPDATE = select(default_share.c.share_bps).with_for_update()
_SET_DEFAULT = update(default_share).values(share_bps=bindparam("s_bps"),
                                            updated_by=bindparam("s_by"),
                                            updated_at=bindparam("s_at"))
_AUDIT_SHARE = share_audit.insert()
_OWN_SHARES = (select(pools.c.pool_id, pools.c.share_bps, pools.c.share_updated_at,
                      pools.c.share_updated_by)
               .where(pools.c.share_bps.is_not(None)).order_by(pools.c.pool_id))

_INSERT_TRANSFER = {key: (insert(transfers) if key is None else
                          insert(transfers).on_conflict_do_nothing(index_elements=[key]))
                    for key in (None, "assignment_id", "bonus_id")}
_DEBIT = (update(balances).where(balances.c.account_id == bindparam("b_account"))
          .values(balance_minor=balances.c.balance_minor + bindparam("b_amount")))

_WORKER_BALANCES = (
    select(accounts.c.currency, accounts.c.kind, balances.c.balance_minor)
    .select_from(accounts.join(balances, balances.c.account_id == accounts.c.account_id))
    .where(accounts.c.owner_id == bindparam("w_owner"), accounts.c.kind.in_(WORKER_KINDS)))
_BALANCE_OF = select(balances.c.balance_minor).where(
    balances.c.account_id == bindparam("b_account"))

_INSERT_PAYOUT = payouts.insert()
_PAYOUT_BY_KEY = select(payouts).where(payouts.c.worker_id == bindparam("k_worker"),
                                       payouts.c.idempotency_key == bindparam("k_key"))
_DECIDE_PAYOUT = (
    update(payouts).where(payouts.c.payout_id == bindparam("d_payout"),
                          payouts.c.status == "pending")
    .values(status=bindparam("d_status"), decided_at=bindparam("d_at"),
            decided_by=bindparam("d_by"), decision_comment=bindparam("d_comment"))
    .returning(*payouts.c))
_PAYOUT_STATUS = select(payouts.c.status).where(payouts.c.payout_id == bindparam("d_payout"))


@functools.lru_cache(maxsize=16)
def _credit_statement(unique_key: str, n_legs: int) -> Prepared:
    """The one-statement credit for ``n_legs`` legs (parsed once, then reused, prepared on
    asyncpg)."""
    values = ", ".join(
        f"(CAST(:a{i} AS VARCHAR), CAST(:k{i} AS VARCHAR), CAST(:c{i} AS VARCHAR), "
        f"CAST(:o{i} AS VARCHAR), CAST(:m{i} AS BIGINT), CAST(:b{i} AS BOOLEAN))"
        for i in range(n_legs))
    sql = f"""
    WITH t AS (
        INSERT INTO transfers ({", ".join(_TRANSFER_COLS)})
        VALUES ({", ".join(f":t_{c}" for c in _TRANSFER_COLS)})
        ON CONFLICT ({unique_key}) DO NOTHING
        RETURNING transfer_id
    ), legs (account_id, kind, currency, owner_id, amount_minor, keeps_balance) AS (
        VALUES {values}
    ), a AS (
        INSERT INTO accounts (account_id, kind, currency, owner_id, created_at)
        SELECT account_id, kind, currency, owner_id, CAST(:now AS TIMESTAMPTZ) FROM legs
        WHERE EXISTS (SELECT 1 FROM t) ORDER BY account_id
        ON CONFLICT (account_id) DO NOTHING
    ), e AS (
        INSERT INTO entries (transfer_id, account_id, currency, amount_minor, created_at)
        SELECT t.transfer_id, legs.account_id, legs.currency, legs.amount_minor,
               CAST(:now AS TIMESTAMPTZ)
        FROM t CROSS JOIN legs
    ), b AS (
        INSERT INTO balances (account_id, balance_minor)
        SELECT legs.account_id, legs.amount_minor FROM t CROSS JOIN legs
        WHERE legs.keeps_balance ORDER BY legs.account_id
        ON CONFLICT (account_id)
        DO UPDATE SET balance_minor = balances.balance_minor + EXCLUDED.balance_minor
    )
    SELECT count(*) FROM t
    """
    return Prepared(text(sql))


def _payout(row: Any) -> rpc.Payout:
    m = row._mapping
    return rpc.Payout.model_validate({k: m[k] for k in rpc.Payout.model_fields if k in m})


def _refused_as(exc: IntegrityError, constraint: str) -> bool:
    return constraint in str(exc.orig if exc.orig is not None else exc)


class LedgerStore(BudgetStoreMixin):
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        # a unit of work's pool terms, read once per pool: a consumer's batch of credits
        # (one transaction) mostly shares a few pools
        self._terms: dict[str, PoolTerms] = {}

    # ------------------------------------------------------------------ pools

    async def open_pool(self, *, pool_id: str, project_id: str, price_minor: int,
                        currency: str, opened_at: datetime) -> tuple[int, str]:
        """Know a pool from its opening (again); returns the price the ledger keeps for it
        (the first one: a pool's price is frozen)."""
        row = (await self.conn.execute(_OPEN_POOL, {
            "pool_id": pool_id, "project_id": project_id, "price_minor": price_minor,
            "currency": currency, "opened_at": opened_at})).one()
        return int(row.price_minor), str(row.currency)

    async def pool_terms(self, pool_id: str) -> PoolTerms | None:
        """The pool's frozen price and shares; None until the pool has opened.

        Read once per pool in a unit of work: the credits of one batch use the shares as
        they were at the batch's first credit of that pool (a share changed meanwhile
        applies from the next batch, as it would had the batch run a moment earlier)."""
        known = self._terms.get(pool_id)
        if known is not None:
            return known
        r = await _POOL_TERMS.first(self.conn, {"p_pool": pool_id})
        if r is None or r.price_minor is None:
            return None
        budget = (None if r.b_requester is None
                  else BudgetLink(pool_id, r.b_requester, r.b_currency))
        terms = self._terms[pool_id] = PoolTerms(
            int(r.price_minor), r.currency,
            _pool_share(r.share_bps, r.share_updated_at, r.share_updated_by),
            _default_share(r.d_bps, r.updated_at, r.updated_by), budget)
        return terms

    # ----------------------------------------------------------------- shares

    async def shares_of(self, pool_id: str | None) -> tuple[ShareSetting | None,
                                                            ShareSetting | None]:
        """(the pool's own share, the admin's default), each None when not set."""
        r = (await self.conn.execute(_SHARES_OF, {"p_pool": pool_id})).one()
        return (_pool_share(r.share_bps, r.share_updated_at, r.share_updated_by),
                _default_share(r.d_bps, r.updated_at, r.updated_by))

    async def set_pool_share(self, pool_id: str, share_bps: int, *, by: str,
                             now: datetime) -> None:
        """Set a pool's share (before or after it opened) and audit the change. The row
        lock makes concurrent changes audit the right "old" value."""
        await self.conn.execute(_KNOW_POOL, {"p_pool": pool_id})
        found = (await self.conn.execute(_POOL_SHARE_FOR_UPDATE, {"p_pool": pool_id})).one()
        await self.conn.execute(_SET_POOL_SHARE, {"p_pool": pool_id, "s_bps": share_bps,
                                                  "s_by": by, "s_at": now})
        await self._audit(pool_id, found.share_bps, share_bps, by, now)

    async def set_default_share(self, share_bps: int, *, by: str, now: datetime) -> None:
        row = {"share_bps": share_bps, "updated_by": by, "updated_at": now}
        old: int | None = None
        if (await self.conn.execute(_ADD_DEFAULT, row)).rowcount != 1:
            old = (await self.conn.execute(_DEFAULT_FOR_UPDATE)).scalar_one()
            await self.conn.execute(_SET_DEFAULT, {"s_bps": share_bps, "s_by": by,
                                                   "s_at": now})
        await self._audit(DEFAULT_SHARE_KEY, old, share_bps, by, now)

    async def _audit(self, pool_key: str, old: int | None, new: int, by: str,
                     now: datetime) -> None:
        await self.conn.execute(_AUDIT_SHARE, {"pool_key": pool_key, "old_bps": old,
                                               "new_bps": new, "changed_by": by,
                                               "changed_at": now})

    async def own_shares(self) -> list[tuple[str, ShareSetting]]:
        """Every pool that has a share of its own, by pool id."""
        rows = (await self.conn.execute(_OWN_SHARES)).all()
        return [(r.pool_id, ShareSetting(r.share_bps, "pool", r.share_updated_at,
                                         r.share_updated_by)) for r in rows]

    async def share_audit(self, pool_key: str | None, *, limit: int,
                          offset: int) -> tuple[list[rpc.ShareChange], int]:
        """Changes of shares, newest first (of one pool, '*': the default's; None: all)."""
        q = select(share_audit)
        if pool_key is not None:
            q = q.where(share_audit.c.pool_key == pool_key)
        total = await self._count(q)
        rows = (await self.conn.execute(q.order_by(share_audit.c.audit_id.desc())
                                        .limit(limit).offset(offset))).all()
        return [rpc.ShareChange(
            audit_id=r.audit_id, pool_id=None if r.pool_key == DEFAULT_SHARE_KEY else r.pool_key,
            old_share=None if r.old_bps is None else format_share(r.old_bps),
            old_share_bps=r.old_bps, new_share=format_share(r.new_bps), new_share_bps=r.new_bps,
            changed_by=r.changed_by, changed_at=r.changed_at) for r in rows], total

    async def _count(self, q: Any) -> int:
        return int((await self.conn.execute(
            select(func.count()).select_from(q.subquery()))).scalar_one())

    # ---------------------------------------------------------------- posting

    async def post_credit(self, transfer: Transfer, legs: list[Leg], *,
                          unique_key: str) -> bool:
        """Post a credit once per business key; False (and nothing written) if it exists.

        A credit only adds to balances, so it locks a single worker balance row and needs
        no lock ordering: the transfer, lazily created accounts, entries and balance move
        are ONE statement (data-modifying CTEs).
        """
        legs = balanced_legs(legs)
        if any(leg.account.keeps_balance and leg.amount_minor < 0 for leg in legs):
            raise ValueError("a credit cannot debit a worker account")
        if unique_key not in ("assignment_id", "bonus_id"):
            raise ValueError(f"unknown business key {unique_key}")
        if not legs:  # a zero credit: the transfer records the business key only
            return await self._insert_transfer(transfer, unique_key)
        params: dict[str, Any] = {f"t_{c}": getattr(transfer, c) for c in _TRANSFER_COLS}
        params["now"] = transfer.created_at
        for i, leg in enumerate(legs):
            a = leg.account
            params.update({f"a{i}": a.account_id, f"k{i}": a.kind, f"c{i}": a.currency,
                           f"o{i}": a.owner_id, f"m{i}": leg.amount_minor,
                           f"b{i}": a.keeps_balance})
        stmt = _credit_statement(unique_key, len(legs))
        return bool((await stmt.one(self.conn, params))[0] == 1)

    async def _insert_transfer(self, transfer: Transfer, unique_key: str | None) -> bool:
        result = await self.conn.execute(_INSERT_TRANSFER[unique_key],
                                         dataclasses.asdict(transfer))
        return bool(result.rowcount == 1)

    async def post_transfer(self, transfer: Transfer, legs: list[Leg]) -> None:
        """Write a transfer (a payout step) and move the worker balances.

        Raises ``InsufficientFunds`` when a worker balance would go negative (the CHECK
        refused it, or there is no balance row yet); the transaction then rolls back.
        """
        legs = balanced_legs(legs)
        await self._insert_transfer(transfer, None)
        await self._post_legs(transfer, legs)

    async def _post_legs(self, transfer: Transfer, legs: list[Leg]) -> None:
        """The legs of a written transfer: lazily created accounts, the entries, and the
        stored balances moved in account order (``InsufficientFunds`` below zero)."""
        now = transfer.created_at
        accs = sorted({leg.account.account_id: leg.account for leg in legs}.values(),
                      key=lambda a: a.account_id)
        # one statement (a multi-row VALUES, as the entries below), not one per row
        await self.conn.execute(insert(accounts).values([
            {"account_id": a.account_id, "kind": a.kind, "currency": a.currency,
             "owner_id": a.owner_id, "created_at": now} for a in accs]).on_conflict_do_nothing())
        # all legs in one statement: the balanced-legs trigger checks per statement
        await self.conn.execute(entries.insert().values([
            {"transfer_id": transfer.transfer_id, "account_id": leg.account.account_id,
             "currency": leg.account.currency, "amount_minor": leg.amount_minor,
             "created_at": now} for leg in legs]))
        for leg in sorted((leg for leg in legs if leg.account.keeps_balance),
                          key=lambda leg: leg.account.account_id):
            await self._move_balance(leg)

    async def _move_balance(self, leg: Leg) -> None:
        account = leg.account.account_id
        if leg.amount_minor > 0:
            stmt = insert(balances).values(account_id=account, balance_minor=leg.amount_minor)
            await self.conn.execute(stmt.on_conflict_do_update(
                index_elements=["account_id"],
                set_={"balance_minor": balances.c.balance_minor + stmt.excluded.balance_minor}))
            return
        # A debit must find the row: PostgreSQL checks an upsert's CHECK on the row it
        # would insert, so debits are plain UPDATEs. The CHECK refuses an overdraft; the
        # row lock makes concurrent debits wait their turn.
        try:
            result = await self.conn.execute(_DEBIT, {"b_account": account,
                                                      "b_amount": leg.amount_minor})
        except IntegrityError as exc:
            if _refused_as(exc, BALANCE_NON_NEGATIVE):
                raise InsufficientFunds(account) from exc
            raise
        if result.rowcount != 1:
            raise InsufficientFunds(account)

    # --------------------------------------------------------------- balances

    async def worker_balances(self, worker_id: str) -> dict[str, dict[str, int]]:
        """{currency: {account kind: balance}} of a worker's accounts."""
        rows = (await self.conn.execute(_WORKER_BALANCES, {"w_owner": worker_id})).all()
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r.currency, dict.fromkeys(WORKER_KINDS, 0))[r.kind] = r.balance_minor
        return out

    async def available_minor(self, worker_id: str, currency: str) -> int:
        acc = account_for_worker(worker_id, currency, "worker_available").account_id
        value = (await self.conn.execute(_BALANCE_OF, {"b_account": acc})).scalar()
        return int(value or 0)

    async def history(self, worker_id: str, *, currency: str | None, limit: int,
                      offset: int) -> tuple[list[rpc.HistoryEntry], int]:
        """Entries of a worker's accounts (the worker's part only), newest first."""
        q = (select(entries.c.entry_id, entries.c.transfer_id, transfers.c.kind,
                    accounts.c.kind.label("account_kind"), entries.c.amount_minor,
                    entries.c.currency, transfers.c.assignment_id, transfers.c.bonus_id,
                    transfers.c.payout_id, transfers.c.pool_id, entries.c.created_at)
             .select_from(entries.join(accounts, accounts.c.account_id == entries.c.account_id)
                          .join(transfers, transfers.c.transfer_id == entries.c.transfer_id))
             .where(accounts.c.owner_id == worker_id, accounts.c.kind.in_(WORKER_KINDS)))
        if currency:
            q = q.where(entries.c.currency == currency)
        total = await self._count(q)
        rows = (await self.conn.execute(q.order_by(entries.c.entry_id.desc())
                                        .limit(limit).offset(offset))).all()
        return [rpc.HistoryEntry(
            entry_id=r.entry_id, transfer_id=r.transfer_id, kind=r.kind,
            account=WORKER_VIEW[r.account_kind], amount_minor=r.amount_minor,
            currency=r.currency, assignment_id=r.assignment_id, bonus_id=r.bonus_id,
            payout_id=r.payout_id, pool_id=r.pool_id, at=r.created_at) for r in rows], total

    # ---------------------------------------------------------------- payouts

    async def payout_by_key(self, worker_id: str, key: str) -> rpc.Payout | None:
        """The payout a worker's Idempotency-Key made; None if none."""
        row = (await self.conn.execute(_PAYOUT_BY_KEY, {"k_worker": worker_id,
                                                        "k_key": key})).first()
        return None if row is None else _payout(row)

    async def add_payout(self, payout: rpc.Payout, *, idempotency_key: str | None) -> None:
        """Store a new payout; ``IdempotencyKeyTaken`` when the worker's key is used."""
        try:
            await self.conn.execute(_INSERT_PAYOUT, {
                **payout.model_dump(exclude={"destination_masked"}),
                                                     "idempotency_key": idempotency_key})
        except IntegrityError as exc:
            if _refused_as(exc, PAYOUT_KEY_UNIQUE):
                raise IdempotencyKeyTaken(idempotency_key) from exc
            raise

    async def decide_payout(self, payout_id: str, *, status: str, by: str, now: datetime,
                            comment: str | None) -> rpc.Payout | None:
        """Decide a pending payout; None when it is not pending (or does not exist).

        The status guard makes concurrent decisions of one payout serialize: the second
        waits for the row lock, then finds it no longer pending.
        """
        row = (await self.conn.execute(_DECIDE_PAYOUT, {
            "d_payout": payout_id, "d_status": status, "d_at": now, "d_by": by,
            "d_comment": comment})).first()
        return None if row is None else _payout(row)

    async def payout_status(self, payout_id: str) -> str | None:
        value = (await self.conn.execute(_PAYOUT_STATUS, {"d_payout": payout_id})).scalar()
        return None if value is None else str(value)

    async def list_payouts(self, *, worker_id: str | None, status: str | None, limit: int,
                           offset: int) -> tuple[list[rpc.Payout], int]:
        q = select(payouts)
        if worker_id is not None:
            q = q.where(payouts.c.worker_id == worker_id)
        if status is not None:
            q = q.where(payouts.c.status == status)
        total = await self._count(q)
        rows = (await self.conn.execute(
            q.order_by(payouts.c.requested_at.desc(), payouts.c.payout_id)
            .limit(limit).offset(offset))).all()
        return [_payout(r) for r in rows], total

    # ---------------------------------------------------------------- reports

    async def dashboard(self) -> rpc.Dashboard:
        """Money totals per currency and counts, for the owner."""
        totals: dict[str, dict[str, int]] = {}

        def cur(c: str) -> dict[str, int]:
            return totals.setdefault(c, dict.fromkeys(_TOTAL_FIELDS, 0))

        for r in await self.conn.execute(_CHARGED):
            t, total = cur(r.currency), int(r.total)  # numeric sum: an exact int
            if r.kind in _PAYERS:
                t["charged_minor"] -= total
            elif r.kind == "platform_revenue":
                t["platform_revenue_minor"] += total
            else:
                t["credited_to_workers_minor"] += total
                t["assignment_credits_minor" if r.tkind == "assignment"
                  else "bonuses_minor"] += total
        for r in await self.conn.execute(_HELD):
            if r.kind in _BALANCE_FIELD:
                cur(r.currency)[_BALANCE_FIELD[r.kind]] += int(r.total)
        credits = {r.kind: r.n for r in await self.conn.execute(_CREDIT_COUNTS)}
        by_status = {r.status: r.n for r in await self.conn.execute(_PAYOUT_COUNTS)}
        workers = (await self.conn.execute(_WORKERS)).scalar_one()
        return rpc.Dashboard(
            totals=[rpc.CurrencyTotals(currency=c, **totals[c]) for c in sorted(totals)],
            counts=rpc.DashboardCounts(
                assignment_credits=credits.get("assignment", 0),
                bonuses=credits.get("bonus", 0), workers=workers,
                payouts_pending=by_status.get("pending", 0),
                payouts_approved=by_status.get("approved", 0),
                payouts_rejected=by_status.get("rejected", 0)))

    async def worker_summary(self, *, worker_id: str | None, limit: int,
                             offset: int) -> tuple[list[rpc.WorkerSummaryRow], int]:
        """Per (worker, currency): balances and what was credited, for admins."""
        base = select(accounts.c.owner_id, accounts.c.currency).where(
            accounts.c.kind == "worker_available")
        if worker_id is not None:
            base = base.where(accounts.c.owner_id == worker_id)
        total = await self._count(base)
        keys = (await self.conn.execute(base.order_by(accounts.c.owner_id, accounts.c.currency)
                                        .limit(limit).offset(offset))).all()
        if not keys:
            return [], total
        owners = {"w_owners": sorted({k.owner_id for k in keys})}
        rows = {(k.owner_id, k.currency): {"worker_id": k.owner_id, "currency": k.currency,
                                           **dict.fromkeys(_SUMMARY_FIELDS, 0)}
                for k in keys}
        for r in await self.conn.execute(_OWNERS_BALANCES, owners):
            if (r.owner_id, r.currency) in rows and r.kind in _BALANCE_FIELD:
                rows[(r.owner_id, r.currency)][_BALANCE_FIELD[r.kind]] = int(r.balance_minor)
        for r in await self.conn.execute(_OWNERS_CREDITS, owners):
            if (r.owner_id, r.currency) in rows:
                rows[(r.owner_id, r.currency)].update(credited_minor=int(r.credited),
                                                      credits=r.credits, bonuses=r.bonuses)
        return [rpc.WorkerSummaryRow.model_validate(rows[(k.owner_id, k.currency)])
                for k in keys], total

    async def consistency(self, *, now: datetime, limit: int = 1000) -> rpc.Consistency:
        """Every transfer sums to zero in one currency; stored balances equal their entries."""
        findings = [rpc.Finding(
            kind="unbalanced_transfer", subject=r.transfer_id, expected_minor=0,
            actual_minor=int(r.total),
            message=f"legs of transfer {r.transfer_id} sum to {r.total}, not 0")
            for r in await self.conn.execute(_UNBALANCED, {"q_limit": limit})]
        findings += [rpc.Finding(kind="mixed_currency_transfer", subject=r.transfer_id,
                                 message=f"transfer {r.transfer_id} mixes currencies")
                     for r in await self.conn.execute(_MIXED, {"q_limit": limit})]
        for r in await self.conn.execute(_STORED_VS_ENTRIES):
            findings += _balance_findings(r.account_id, r.balance_minor, int(r.total or 0))
        counts = (await self.conn.execute(_COUNTS)).one()
        return rpc.Consistency(ok=not findings, transfers_checked=counts.transfers,
                               entries_checked=counts.entries, accounts_checked=counts.accounts,
                               findings=findings[:limit], checked_at=now)


def _balance_findings(account_id: str, stored: int | None,
                      from_entries: int) -> list[rpc.Finding]:
    if stored is None:
        return [] if from_entries == 0 else [rpc.Finding(
            kind="missing_balance", subject=account_id, expected_minor=from_entries,
            message=f"account {account_id} has entries but no stored balance")]
    found = []
    if stored != from_entries:
        found.append(rpc.Finding(
            kind="balance_mismatch", subject=account_id, expected_minor=from_entries,
            actual_minor=stored, message=f"stored balance of {account_id} is {stored}, "
                                         f"its entries sum to {from_entries}"))
    if stored < 0:
        found.append(rpc.Finding(kind="negative_balance", subject=account_id,
                                 actual_minor=stored,
                                 message=f"balance of {account_id} is negative"))
    return found


def _sum(col: Any) -> Any:
    return func.coalesce(func.sum(col), 0)


_BALANCE_FIELD = {"worker_available": "available_minor", "worker_hold": "on_hold_minor",
                  "worker_paid": "paid_minor"}
_TOTAL_FIELDS = ("charged_minor", "credited_to_workers_minor", "assignment_credits_minor",
                 "bonuses_minor", "platform_revenue_minor", "available_minor", "on_hold_minor",
                 "paid_minor")
_SUMMARY_FIELDS = ("available_minor", "on_hold_minor", "paid_minor", "credited_minor",
                   "credits", "bonuses")
_LEGS = (entries.join(accounts, accounts.c.account_id == entries.c.account_id)
         .join(transfers, transfers.c.transfer_id == entries.c.transfer_id))
_CREDIT_KINDS = transfers.c.kind.in_(("assignment", "bonus"))
# who pays a credit: the platform's clearing account, or a requester's budget (its pool's
# reserve or its available money)
_PAYERS = ("requester_clearing", *BUDGET_KINDS)
_CHARGED = (select(accounts.c.currency, accounts.c.kind, transfers.c.kind.label("tkind"),
                   _sum(entries.c.amount_minor).label("total"))
            .select_from(_LEGS)
            .where(accounts.c.kind.in_((*_PAYERS, "platform_revenue", "worker_available")),
                   _CREDIT_KINDS)
            .group_by(accounts.c.currency, accounts.c.kind, transfers.c.kind))
_HELD = (select(accounts.c.currency, accounts.c.kind,
                _sum(balances.c.balance_minor).label("total"))
         .select_from(balances.join(accounts, accounts.c.account_id == balances.c.account_id))
         .group_by(accounts.c.currency, accounts.c.kind))
_CREDIT_COUNTS = (select(transfers.c.kind, func.count().label("n")).where(_CREDIT_KINDS)
                  .group_by(transfers.c.kind))
_PAYOUT_COUNTS = select(payouts.c.status, func.count().label("n")).group_by(payouts.c.status)
_WORKERS = (select(func.count(func.distinct(accounts.c.owner_id)))
            .where(accounts.c.owner_id.is_not(None)))
_OWNERS = accounts.c.owner_id.in_(bindparam("w_owners", expanding=True))
_OWNERS_BALANCES = (
    select(accounts.c.owner_id, accounts.c.currency, accounts.c.kind, balances.c.balance_minor)
    .select_from(accounts.join(balances, balances.c.account_id == accounts.c.account_id))
    .where(_OWNERS))
_OWNERS_CREDITS = (
    select(accounts.c.owner_id, accounts.c.currency,
           _sum(entries.c.amount_minor).label("credited"),
           func.count(case((transfers.c.kind == "assignment", literal(1)))).label("credits"),
           func.count(case((transfers.c.kind == "bonus", literal(1)))).label("bonuses"))
    .select_from(_LEGS)
    .where(_OWNERS, accounts.c.kind == "worker_available", _CREDIT_KINDS)
    .group_by(accounts.c.owner_id, accounts.c.currency))
_UNBALANCED = (select(entries.c.transfer_id, func.sum(entries.c.amount_minor).label("total"))
               .group_by(entries.c.transfer_id)
               .having(func.sum(entries.c.amount_minor) != 0).limit(_LIMIT))
_MIXED = (select(entries.c.transfer_id).group_by(entries.c.transfer_id)
          .having(func.count(func.distinct(entries.c.currency)) > 1).limit(_LIMIT))
_ACCOUNT_SUMS = (select(entries.c.account_id, func.sum(entries.c.amount_minor).label("total"))
                 .group_by(entries.c.account_id).subquery())
_STORED_VS_ENTRIES = (
    select(accounts.c.account_id, balances.c.balance_minor, _ACCOUNT_SUMS.c.total)
    .select_from(accounts.outerjoin(balances, balances.c.account_id == accounts.c.account_id)
                 .outerjoin(_ACCOUNT_SUMS, _ACCOUNT_SUMS.c.account_id == accounts.c.account_id))
    .where(accounts.c.kind.in_(BALANCE_KINDS)))
_COUNTS = select(
    select(func.count()).select_from(transfers).scalar_subquery().label("transfers"),
    select(func.count()).select_from(entries).scalar_subquery().label("entries"),
    select(func.count()).select_from(accounts).scalar_subquery().label("accounts"))

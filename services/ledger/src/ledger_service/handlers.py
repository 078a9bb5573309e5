"""Ledger use cases on a connection (SQLAlchemy Core; the credit path is a few round trips).

Writers post a transfer as: one ``transfers`` row (carrying the business key, so a
second credit of the same assignment or bonus is a no-op), the accounts created
lazily, all legs in ONE ``entries`` INSERT (the database checks per statement
that they sum to zero), and one upsert of the worker balances whose CHECK keeps
them non-negative. Balance rows are upserted in account-id order so concurrent
transfers lock them in the same order and cannot deadlock.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from ledger_service.db import (BALANCE_NON_NEGATIVE, accounts, balances, entries, payouts,
                               share_audit, shares, transfers)
from ledger_service.domain import (DEFAULT_SHARE_KEY, WORKER_KINDS, Leg, account_for_worker,
                                   balanced_legs)
from servicekit.db import dialect_insert

log = logging.getLogger("ledger.handlers")


def new_id() -> str:
    return str(uuid.uuid4())


# ------------------------------------------------------------------------ posting


async def insert_transfer(conn: AsyncConnection, row: dict[str, Any], *,
                          unique_key: str | None = None) -> bool:
    """Insert a transfer row; with ``unique_key``, False if that business key exists."""
    insert = dialect_insert(conn)
    stmt = insert(transfers).values(**row)
    if unique_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[unique_key])
    result = await conn.execute(stmt)
    return result.rowcount == 1


async def post_legs(conn: AsyncConnection, transfer_id: str, legs: list[Leg],
                    now: datetime) -> None:
    """Write the legs of a transfer and move the stored worker balances.

    Raises ``IntegrityError`` (constraint ``ck_balances_non_negative``) or
    ``InsufficientFunds`` when a worker balance would go negative; the caller's
    transaction then rolls back.
    """
    legs = balanced_legs(legs)
    if not legs:
        return
    insert = dialect_insert(conn)
    accs = {leg.account.account_id: leg.account for leg in legs}
    await conn.execute(
        insert(accounts).values([
            dict(account_id=a.account_id, kind=a.kind, currency=a.currency, owner_id=a.owner_id,
                 created_at=now) for a in sorted(accs.values(), key=lambda a: a.account_id)
        # No conflict target: a concurrent first use of the same account can collide on
        # the primary key or on (account_id, currency); either means "already there".
        ]).on_conflict_do_nothing())
    await conn.execute(entries.insert().values([
        dict(transfer_id=transfer_id, account_id=leg.account.account_id,
             currency=leg.account.currency, amount_minor=leg.amount_minor, created_at=now)
        for leg in legs
    ]))
    kept = sorted((leg for leg in legs if leg.account.keeps_balance),
                  key=lambda leg: leg.account.account_id)
    credits = [leg for leg in kept if leg.amount_minor > 0]
    # One statement for all credits (the credit path): rows are created lazily.
    if credits and len(credits) == len(kept):
        await _add_to_balances(conn, credits)
        return
    for leg in kept:
        if leg.amount_minor > 0:
            await _add_to_balances(conn, [leg])
        else:
            # A debit must find the row: PostgreSQL checks an upsert's CHECK on the
            # row it would insert, so debits are plain UPDATEs. The CHECK refuses an
            # overdraft; the row lock makes concurrent debits wait their turn.
            result = await conn.execute(
                update(balances).where(balances.c.account_id == leg.account.account_id)
                .values(balance_minor=balances.c.balance_minor + leg.amount_minor))
            if result.rowcount != 1:
                raise InsufficientFunds(leg.account.account_id)


async def _add_to_balances(conn: AsyncConnection, legs: list[Leg]) -> None:
    insert = dialect_insert(conn)
    stmt = insert(balances).values([
        dict(account_id=leg.account.account_id, balance_minor=leg.amount_minor) for leg in legs
    ])
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id"],
        set_={"balance_minor": balances.c.balance_minor + stmt.excluded.balance_minor})
    await conn.execute(stmt)


class InsufficientFunds(Exception):
    """A debit found no money in the account (it has never been credited)."""


_TRANSFER_COLS = ("transfer_id", "kind", "currency", "worker_id", "pool_id", "project_id",
                  "assignment_id", "bonus_id", "payout_id", "cause_event_id", "created_by",
                  "created_at")


@functools.lru_cache(maxsize=16)
def _credit_statement(unique_key: str, n_legs: int) -> TextClause:
    """The one-statement credit for ``n_legs`` legs (parsed once, then reused)."""
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
    return text(sql)


async def post_credit(conn: AsyncConnection, row: dict[str, Any], legs: list[Leg], *,
                      unique_key: str, now: datetime) -> bool:
    """Post a credit once per business key; False (and nothing written) if it exists.

    A credit only adds to worker balances, so it locks a single balance row and
    needs no lock ordering. On PostgreSQL the transfer, lazily created accounts,
    entries and balance move are ONE statement (data-modifying CTEs), keeping the
    hot credit path at a couple of round trips; elsewhere it is the plain sequence.
    """
    legs = balanced_legs(legs)
    if any(leg.account.keeps_balance and leg.amount_minor < 0 for leg in legs):
        raise ValueError("a credit cannot debit a worker account")
    if conn.dialect.name != "postgresql":
        if not await insert_transfer(conn, row, unique_key=unique_key):
            return False
        await post_legs(conn, row["transfer_id"], legs, now)
        return True
    if unique_key not in ("assignment_id", "bonus_id"):
        raise ValueError(f"unknown business key {unique_key}")
    params: dict[str, Any] = {f"t_{c}": row.get(c) for c in _TRANSFER_COLS}
    params["now"] = now
    for i, leg in enumerate(legs):
        a = leg.account
        params.update({f"a{i}": a.account_id, f"k{i}": a.kind, f"c{i}": a.currency,
                       f"o{i}": a.owner_id, f"m{i}": leg.amount_minor,
                       f"b{i}": a.keeps_balance})
    if not legs:  # a zero credit: the transfer records the business key only
        return await insert_transfer(conn, row, unique_key=unique_key)
    stmt = _credit_statement(unique_key, len(legs))
    return (await conn.execute(stmt, params)).scalar_one() == 1


def is_insufficient_funds(exc: Exception) -> bool:
    """The database (or the missing balance row) refused to take a balance below zero."""
    if isinstance(exc, InsufficientFunds):
        return True
    return isinstance(exc, IntegrityError) and BALANCE_NON_NEGATIVE in str(
        exc.orig if exc.orig is not None else exc)


# ------------------------------------------------------------------------- shares


@dataclass(frozen=True)
class ShareSetting:
    pool_key: str
    share_bps: int
    source: str  # "pool" | "default" | "built_in"
    updated_at: datetime | None = None
    updated_by: str | None = None


_SHARE_LOOKUP = (  # built once: credits look the share up for every accepted assignment
    select(shares.c.pool_key, shares.c.share_bps, shares.c.updated_at, shares.c.updated_by)
    .where(shares.c.pool_key.in_([bindparam("pool_key"), bindparam("default_key")])))


async def share_for_pool(conn: AsyncConnection, pool_id: str | None,
                         built_in_bps: int) -> ShareSetting:
    """The pool's own share, else the admin's default, else the built-in default."""
    rows = (await conn.execute(_SHARE_LOOKUP, {
        "pool_key": DEFAULT_SHARE_KEY if pool_id is None else pool_id,
        "default_key": DEFAULT_SHARE_KEY})).all()
    found = {r.pool_key: r for r in rows}
    if pool_id is not None and pool_id in found:
        r = found[pool_id]
        return ShareSetting(pool_id, r.share_bps, "pool", r.updated_at, r.updated_by)
    if DEFAULT_SHARE_KEY in found:
        r = found[DEFAULT_SHARE_KEY]
        return ShareSetting(DEFAULT_SHARE_KEY, r.share_bps, "default", r.updated_at,
                            r.updated_by)
    return ShareSetting(DEFAULT_SHARE_KEY, built_in_bps, "built_in")


async def set_share(conn: AsyncConnection, *, pool_key: str, share_bps: int, by: str,
                    now: datetime) -> int | None:
    """Set a share and append the change to the audit; returns the old value."""
    insert = dialect_insert(conn)
    created = await conn.execute(
        insert(shares).values(pool_key=pool_key, share_bps=share_bps, updated_by=by,
                              updated_at=now)
        .on_conflict_do_nothing(index_elements=["pool_key"]))
    old: int | None = None
    if created.rowcount != 1:
        # The row exists: lock it so concurrent changes audit the right "old" value.
        old = (await conn.execute(select(shares.c.share_bps)
                                  .where(shares.c.pool_key == pool_key)
                                  .with_for_update())).scalar_one()
        await conn.execute(update(shares).where(shares.c.pool_key == pool_key)
                           .values(share_bps=share_bps, updated_by=by, updated_at=now))
    await conn.execute(share_audit.insert().values(pool_key=pool_key, old_bps=old,
                                                   new_bps=share_bps, changed_by=by,
                                                   changed_at=now))
    return old


# ---------------------------------------------------------------------- balances


async def worker_balances(conn: AsyncConnection, worker_id: str) -> dict[str, dict[str, int]]:
    """{currency: {kind: balance}} of a worker's accounts."""
    rows = (await conn.execute(
        select(accounts.c.currency, accounts.c.kind, balances.c.balance_minor)
        .select_from(accounts.join(balances, balances.c.account_id == accounts.c.account_id))
        .where(accounts.c.owner_id == worker_id, accounts.c.kind.in_(WORKER_KINDS)))).all()
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r.currency, {k: 0 for k in WORKER_KINDS})[r.kind] = r.balance_minor
    return out


async def available_minor(conn: AsyncConnection, worker_id: str, currency: str) -> int:
    acc = account_for_worker(worker_id, currency, "worker_available").account_id
    value = (await conn.execute(select(balances.c.balance_minor)
                                .where(balances.c.account_id == acc))).scalar()
    return int(value or 0)


# ------------------------------------------------------------------------ reports


def _sum(col: Any) -> Any:
    return func.coalesce(func.sum(col), 0)


async def dashboard(conn: AsyncConnection) -> dict[str, Any]:
    """Totals per currency and counts for the owner."""
    by_kind = (await conn.execute(
        select(accounts.c.currency, accounts.c.kind, transfers.c.kind.label("tkind"),
               _sum(entries.c.amount_minor).label("total"))
        .select_from(entries.join(accounts, accounts.c.account_id == entries.c.account_id)
                     .join(transfers, transfers.c.transfer_id == entries.c.transfer_id))
        .where(accounts.c.kind.in_(("requester_clearing", "platform_revenue",
                                    "worker_available")),
               transfers.c.kind.in_(("assignment", "bonus")))
        .group_by(accounts.c.currency, accounts.c.kind, transfers.c.kind))).all()
    held = (await conn.execute(
        select(accounts.c.currency, accounts.c.kind, _sum(balances.c.balance_minor).label("total"))
        .select_from(balances.join(accounts, accounts.c.account_id == balances.c.account_id))
        .group_by(accounts.c.currency, accounts.c.kind))).all()
    totals: dict[str, dict[str, int]] = {}

    def cur(c: str) -> dict[str, int]:
        return totals.setdefault(c, dict(
            currency=c, charged_minor=0, credited_to_workers_minor=0,
            assignment_credits_minor=0, bonuses_minor=0, platform_revenue_minor=0,
            available_minor=0, on_hold_minor=0, paid_minor=0))

    for r in by_kind:
        t = cur(r.currency)
        total = int(r.total)
        if r.kind == "requester_clearing":
            t["charged_minor"] += -total
        elif r.kind == "platform_revenue":
            t["platform_revenue_minor"] += total
        else:
            t["credited_to_workers_minor"] += total
            t["assignment_credits_minor" if r.tkind == "assignment" else "bonuses_minor"] += total
    field = {"worker_available": "available_minor", "worker_hold": "on_hold_minor",
             "worker_paid": "paid_minor"}
    for r in held:
        if r.kind in field:
            cur(r.currency)[field[r.kind]] += int(r.total)
    counts_t = dict((await conn.execute(
        select(transfers.c.kind, func.count()).where(transfers.c.kind.in_(("assignment", "bonus")))
        .group_by(transfers.c.kind))).all())
    counts_p = dict((await conn.execute(
        select(payouts.c.status, func.count()).group_by(payouts.c.status))).all())
    workers = (await conn.execute(
        select(func.count(func.distinct(accounts.c.owner_id)))
        .where(accounts.c.owner_id.is_not(None)))).scalar() or 0
    return dict(
        totals=[totals[c] for c in sorted(totals)],
        counts=dict(assignment_credits=counts_t.get("assignment", 0),
                    bonuses=counts_t.get("bonus", 0), workers=workers,
                    payouts_pending=counts_p.get("pending", 0),
                    payouts_approved=counts_p.get("approved", 0),
                    payouts_rejected=counts_p.get("rejected", 0)))


async def worker_summary(conn: AsyncConnection, *, worker_id: str | None, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
    """Per (worker, currency): balances and what was credited, for admins."""
    base = select(accounts.c.owner_id, accounts.c.currency).where(
        accounts.c.kind == "worker_available")
    if worker_id is not None:
        base = base.where(accounts.c.owner_id == worker_id)
    total = (await conn.execute(select(func.count()).select_from(base.subquery()))).scalar() or 0
    keys = (await conn.execute(base.order_by(accounts.c.owner_id, accounts.c.currency)
                               .limit(limit).offset(offset))).all()
    if not keys:
        return [], total
    owners = sorted({k.owner_id for k in keys})
    bal = (await conn.execute(
        select(accounts.c.owner_id, accounts.c.currency, accounts.c.kind, balances.c.balance_minor)
        .select_from(accounts.join(balances, balances.c.account_id == accounts.c.account_id))
        .where(accounts.c.owner_id.in_(owners)))).all()
    cred = (await conn.execute(
        select(accounts.c.owner_id, accounts.c.currency,
               _sum(entries.c.amount_minor).label("credited"),
               func.count(case((transfers.c.kind == "assignment", literal(1)))).label("credits"),
               func.count(case((transfers.c.kind == "bonus", literal(1)))).label("bonuses"))
        .select_from(entries.join(accounts, accounts.c.account_id == entries.c.account_id)
                     .join(transfers, transfers.c.transfer_id == entries.c.transfer_id))
        .where(accounts.c.owner_id.in_(owners), accounts.c.kind == "worker_available",
               transfers.c.kind.in_(("assignment", "bonus")))
        .group_by(accounts.c.owner_id, accounts.c.currency))).all()
    rows = {(k.owner_id, k.currency): dict(worker_id=k.owner_id, currency=k.currency,
                                           available_minor=0, on_hold_minor=0, paid_minor=0,
                                           credited_minor=0, credits=0, bonuses=0)
            for k in keys}
    field = {"worker_available": "available_minor", "worker_hold": "on_hold_minor",
             "worker_paid": "paid_minor"}
    for r in bal:
        if (r.owner_id, r.currency) in rows and r.kind in field:
            rows[(r.owner_id, r.currency)][field[r.kind]] = int(r.balance_minor)
    for r in cred:
        if (r.owner_id, r.currency) in rows:
            rows[(r.owner_id, r.currency)].update(credited_minor=int(r.credited),
                                                  credits=r.credits, bonuses=r.bonuses)
    return [rows[(k.owner_id, k.currency)] for k in keys], total


async def consistency(conn: AsyncConnection, *, limit: int = 1000) -> dict[str, Any]:
    """Every transfer sums to zero in one currency; stored balances equal their entries."""
    findings: list[dict[str, Any]] = []
    unbalanced = (await conn.execute(
        select(entries.c.transfer_id, func.sum(entries.c.amount_minor).label("total"))
        .group_by(entries.c.transfer_id).having(func.sum(entries.c.amount_minor) != 0)
        .limit(limit))).all()
    findings += [dict(kind="unbalanced_transfer", subject=r.transfer_id, expected_minor=0,
                      actual_minor=int(r.total),
                      message=f"legs of transfer {r.transfer_id} sum to {r.total}, not 0")
                 for r in unbalanced]
    mixed = (await conn.execute(
        select(entries.c.transfer_id).group_by(entries.c.transfer_id)
        .having(func.count(func.distinct(entries.c.currency)) > 1).limit(limit))).all()
    findings += [dict(kind="mixed_currency_transfer", subject=r.transfer_id,
                      message=f"transfer {r.transfer_id} mixes currencies") for r in mixed]
    sums = (select(entries.c.account_id, func.sum(entries.c.amount_minor).label("total"))
            .group_by(entries.c.account_id).subquery())
    stored = (await conn.execute(
        select(accounts.c.account_id, balances.c.balance_minor, sums.c.total)
        .select_from(accounts.outerjoin(balances, balances.c.account_id == accounts.c.account_id)
                     .outerjoin(sums, sums.c.account_id == accounts.c.account_id))
        .where(accounts.c.kind.in_(WORKER_KINDS)))).all()
    for r in stored:
        from_entries = int(r.total or 0)
        if r.balance_minor is None:
            if from_entries != 0:
                findings.append(dict(kind="missing_balance", subject=r.account_id,
                                     expected_minor=from_entries, actual_minor=None,
                                     message=f"account {r.account_id} has entries but no "
                                             "stored balance"))
            continue
        if int(r.balance_minor) != from_entries:
            findings.append(dict(kind="balance_mismatch", subject=r.account_id,
                                 expected_minor=from_entries, actual_minor=int(r.balance_minor),
                                 message=f"stored balance of {r.account_id} is "
                                         f"{r.balance_minor}, its entries sum to {from_entries}"))
        if int(r.balance_minor) < 0:
            findings.append(dict(kind="negative_balance", subject=r.account_id,
                                 actual_minor=int(r.balance_minor),
                                 message=f"balance of {r.account_id} is negative"))
    n_transfers = (await conn.execute(select(func.count()).select_from(transfers))).scalar()
    n_entries = (await conn.execute(select(func.count()).select_from(entries))).scalar()
    n_accounts = (await conn.execute(select(func.count()).select_from(accounts))).scalar()
    return dict(ok=not findings, transfers_checked=n_transfers or 0,
                entries_checked=n_entries or 0, accounts_checked=n_accounts or 0,
                findings=findings[:limit])


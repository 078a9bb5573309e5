"""SQL of requester budgets: requesters, pool links, top-ups, the figures of a pool's
budget, and a transfer keyed by its business key that may debit stored balances.

A mixin of :class:`ledger_service.store.LedgerStore` (it uses its connection and balance
moves), kept apart from the hot credit path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.exc import IntegrityError

from contracts.rpc import ledger as rpc
from ledger_service.db import (
    TOPUP_KEY_UNIQUE,
    accounts,
    balances,
    entries,
    pool_budgets,
    requesters,
    topups,
    transfers,
)
from ledger_service.domain import IdempotencyKeyTaken, Leg, Transfer, balanced_legs
from servicekit.db import insert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class BudgetLink:
    """The requester whose budget pays for a pool."""

    pool_id: str
    requester_id: str
    currency: str


def requester_account_id(requester_id: str, currency: str) -> str:
    return f"requester_available:{currency}:{requester_id}"


def reserve_account_id(pool_id: str, currency: str) -> str:
    return f"pool_reserve:{currency}:{pool_id}"


_LINK = select(pool_budgets).where(pool_budgets.c.pool_id == bindparam("l_pool"))
_BALANCE_FOR_UPDATE = (select(balances.c.balance_minor)
                       .where(balances.c.account_id == bindparam("b_account")).with_for_update())
_BALANCE = select(balances.c.balance_minor).where(balances.c.account_id == bindparam("b_account"))
_SPENDING = ("assignment", "bonus")


class BudgetStoreMixin:
    conn: AsyncConnection

    if TYPE_CHECKING:  # LedgerStore's posting steps
        async def _insert_transfer(self, transfer: Transfer,
                                   unique_key: str | None) -> bool: ...

        async def _post_legs(self, transfer: Transfer, legs: list[Leg]) -> None: ...

    # ------------------------------------------------------------- requesters

    async def add_requester(self, row: dict[str, Any]) -> None:
        await self.conn.execute(requesters.insert().values(**row))

    async def requester_row(self, requester_id: str) -> Any:
        return (await self.conn.execute(select(requesters).where(
            requesters.c.requester_id == requester_id))).first()

    async def requester_rows(self, *, limit: int, offset: int) -> tuple[list[Any], int]:
        total = (await self.conn.execute(select(func.count()).select_from(requesters)))
        rows = (await self.conn.execute(select(requesters).order_by(
            requesters.c.created_at.desc(), requesters.c.requester_id)
            .limit(limit).offset(offset))).all()
        return list(rows), int(total.scalar_one())

    async def requester_money(self, requester_id: str, currency: str) -> tuple[int, int]:
        """(available, reserved by its pools) of a requester."""
        available = await self.balance_of(requester_account_id(requester_id, currency))
        reserved: Any = (await self.conn.execute(
            select(func.coalesce(func.sum(balances.c.balance_minor), 0))
            .select_from(pool_budgets.join(balances, balances.c.account_id == func.concat(
                "pool_reserve:", pool_budgets.c.currency, ":", pool_budgets.c.pool_id)))
            .where(pool_budgets.c.requester_id == requester_id))).scalar_one()
        return available, int(reserved)

    async def balance_of(self, account_id: str, *, lock: bool = False) -> int:
        value = (await self.conn.execute(_BALANCE_FOR_UPDATE if lock else _BALANCE,
                                         {"b_account": account_id})).scalar()
        return int(value or 0)

    # ---------------------------------------------------------------- top-ups

    async def topup_by_key(self, requester_id: str, key: str) -> Any:
        return (await self.conn.execute(select(topups).where(
            topups.c.requester_id == requester_id, topups.c.idempotency_key == key))).first()

    async def add_topup(self, row: dict[str, Any]) -> None:
        try:
            await self.conn.execute(topups.insert().values(**row))
        except IntegrityError as exc:
            if TOPUP_KEY_UNIQUE in str(exc.orig if exc.orig is not None else exc):
                raise IdempotencyKeyTaken(row["idempotency_key"]) from exc
            raise

    # ------------------------------------------------------------ pool budgets

    async def pool_budget_of(self, pool_id: str, *, lock: bool = False) -> BudgetLink | None:
        stmt = _LINK.with_for_update() if lock else _LINK
        row = (await self.conn.execute(stmt, {"l_pool": pool_id})).first()
        return None if row is None else BudgetLink(row.pool_id, row.requester_id, row.currency)

    async def link_pool(self, *, pool_id: str, requester_id: str, currency: str, by: str,
                        now: datetime) -> BudgetLink:
        """Link once; the first link stays (returned) when one exists."""
        await self.conn.execute(insert(pool_budgets).values(
            pool_id=pool_id, requester_id=requester_id, currency=currency, linked_by=by,
            linked_at=now).on_conflict_do_nothing(index_elements=["pool_id"]))
        link = await self.pool_budget_of(pool_id)
        assert link is not None
        return link

    async def pool_figures(self, link: BudgetLink) -> dict[str, int]:
        """Sums over the pool's transfers: reserved, released, spent (from where), credits."""
        reserve = reserve_account_id(link.pool_id, link.currency)
        budget = requester_account_id(link.requester_id, link.currency)
        amount, acc, kind = entries.c.amount_minor, entries.c.account_id, transfers.c.kind
        spending = kind.in_(_SPENDING)

        def total(cond: Any, sign: int = 1) -> Any:
            return func.coalesce(func.sum(case((cond, amount * sign), else_=0)), 0)

        row = (await self.conn.execute(
            select(total((kind == "budget_reserve") & (acc == reserve)).label("reserved"),
                   total((kind == "budget_release") & (acc == budget)).label("released"),
                   total(spending & (acc == reserve), -1).label("from_reserve"),
                   total(spending & (acc == budget), -1).label("from_available"),
                   total(spending & (accounts.c.kind == "worker_available")).label("workers"),
                   total(spending & (accounts.c.kind == "platform_revenue")).label("platform"))
            .select_from(entries.join(transfers, transfers.c.transfer_id == entries.c.transfer_id)
                         .join(accounts, accounts.c.account_id == entries.c.account_id))
            .where(transfers.c.pool_id == link.pool_id))).one()
        return {k: int(v) for k, v in row._mapping.items()}

    # ---------------------------------------------------------------- posting

    async def post_keyed_transfer(self, transfer: Transfer, legs: list[Leg], *,
                                  unique_key: str | None) -> bool:
        """Post a transfer whose legs may debit stored balances; with ``unique_key``, once
        per business key (False, nothing written, when it exists). ``InsufficientFunds``
        when a balance would go below zero (the database's CHECK refuses it)."""
        legs = balanced_legs(legs)
        if not await self._insert_transfer(transfer, unique_key):
            return False
        if legs:
            await self._post_legs(transfer, legs)
        return True


def requester_view(row: Any, available: int, reserved: int) -> rpc.Requester:
    return rpc.Requester(requester_id=row.requester_id, name=row.name, currency=row.currency,
                         available_minor=available, reserved_minor=reserved,
                         created_at=row.created_at, created_by=row.created_by)

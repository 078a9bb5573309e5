"""Ledger tables: double-entry accounts, transfers and entries; pools (frozen price and
worker share together); the default share; payouts.

Append-only: ``accounts``, ``transfers``, ``entries`` and ``share_audit`` are never
updated or deleted (triggers in the initial migration refuse it, and also refuse any
INSERT statement whose legs of a transfer do not sum to zero in one currency). A pool's
price and currency never change once the ledger knows them, and a pool is never deleted
(a trigger too). ``balances`` is the projection of worker accounts that the database keeps
non-negative with a CHECK constraint, updated in the same transaction as the entries.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()

BALANCE_NON_NEGATIVE = "ck_balances_non_negative"
PAYOUT_KEY_UNIQUE = "uq_payouts_worker_idempotency_key"
_BPS_RANGE = "share_bps >= 0 AND share_bps <= 10000"

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(120), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("owner_id", String(64), nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Lets entries reference (account, currency): a leg cannot be in another currency.
    UniqueConstraint("account_id", "currency", name="uq_accounts_id_currency"),
)

transfers = Table(
    "transfers", metadata,
    Column("transfer_id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("worker_id", String(64), nullable=True, index=True),
    Column("pool_id", String(64), nullable=True, index=True),  # a pool's budget figures
    Column("project_id", String(64), nullable=True),
    # Business keys: one credit per assignment, one per bonus.
    Column("assignment_id", String(64), nullable=True, unique=True),
    Column("bonus_id", String(64), nullable=True, unique=True),
    Column("payout_id", String(36), nullable=True),
    Column("cause_event_id", String(64), nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("payout_id", "kind", name="uq_transfers_payout_kind"),
)

entries = Table(
    "entries", metadata,
    Column("entry_id", BigInteger, primary_key=True, autoincrement=True),
    Column("transfer_id", String(36), ForeignKey("transfers.transfer_id"), nullable=False,
           index=True),
    Column("account_id", String(120), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["account_id", "currency"], ["accounts.account_id", "accounts.currency"],
                         name="fk_entries_account_currency"),
    CheckConstraint("amount_minor <> 0", name="ck_entries_nonzero"),
    Index("ix_entries_account_entry", "account_id", "entry_id"),
)

balances = Table(
    "balances", metadata,
    Column("account_id", String(120), ForeignKey("accounts.account_id"), primary_key=True),
    Column("balance_minor", BigInteger, nullable=False),
    CheckConstraint("balance_minor >= 0", name=BALANCE_NON_NEGATIVE),
)

# A pool as the ledger knows it: the price an accepted assignment pays, frozen when the pool
# opened (task.pool_opened), and the worker's share of it (null: the default). An admin may
# set the share before the pool opens (the gateway checks the pool exists): the row then
# waits for its price.
pools = Table(
    "pools", metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=True),
    Column("price_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Column("share_bps", Integer, nullable=True),
    Column("share_updated_by", String(64), nullable=True),
    Column("share_updated_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("price_minor >= 0", name="ck_pools_price_non_negative"),
    CheckConstraint("(price_minor IS NULL) = (currency IS NULL) "
                    "AND (price_minor IS NULL) = (opened_at IS NULL)",
                    name="ck_pools_opened_with_a_price"),
    CheckConstraint(_BPS_RANGE, name="ck_pools_share_bps_range"),
)

# The platform-wide default share: at most one row.
default_share = Table(
    "default_share", metadata,
    Column("singleton", Boolean, primary_key=True, server_default=true()),
    Column("share_bps", Integer, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("singleton", name="ck_default_share_singleton"),
    CheckConstraint(_BPS_RANGE, name="ck_default_share_bps_range"),
)

share_audit = Table(
    "share_audit", metadata,
    Column("audit_id", BigInteger, primary_key=True, autoincrement=True),
    # a pool id, or "*" for the default
    Column("pool_key", String(64), nullable=False, index=True),
    Column("old_bps", Integer, nullable=True),
    Column("new_bps", Integer, nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

payouts = Table(
    "payouts", metadata,
    Column("payout_id", String(36), primary_key=True),
    Column("worker_id", String(64), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("comment", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("decision_comment", Text, nullable=True),
    # Set by the client (HTTP Idempotency-Key): a retried request finds its first payout.
    # NULLs are distinct: requests without a key never collide.
    Column("idempotency_key", String(100), nullable=True),
    # Where to pay (given by the worker); shown in full only to the owner who approves.
    Column("destination_method", String(16), nullable=True),
    Column("destination_details", String(64), nullable=True),
    CheckConstraint("amount_minor > 0", name="ck_payouts_positive"),
    CheckConstraint("(destination_method IS NULL) = (destination_details IS NULL)",
                    name="ck_payouts_destination_whole"),
    CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="ck_payouts_status"),
    Index("ix_payouts_status_requested", "status", "requested_at"),
    Index(PAYOUT_KEY_UNIQUE, "worker_id", "idempotency_key", unique=True),
)

# Requester budgets. A requester's money lives in ledger accounts (``requester_available``
# and, per pool, ``pool_reserve``) whose balance rows the CHECK above keeps non-negative;
# these tables name the requesters, link pools to them and key the top-ups.
requesters = Table(
    "requesters", metadata,
    Column("requester_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

pool_budgets = Table(
    "pool_budgets", metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("requester_id", String(36), ForeignKey("requesters.requester_id"), nullable=False,
           index=True),
    Column("currency", String(3), nullable=False),
    Column("linked_by", String(64), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
)

TOPUP_KEY_UNIQUE = "uq_topups_requester_idempotency_key"
topups = Table(
    "topups", metadata,
    Column("topup_id", String(36), primary_key=True),
    Column("requester_id", String(36), ForeignKey("requesters.requester_id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("comment", Text, nullable=False),
    Column("idempotency_key", String(100), nullable=True),
    Column("transfer_id", String(36), ForeignKey("transfers.transfer_id"), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount_minor > 0", name="ck_topups_positive"),
    Index(TOPUP_KEY_UNIQUE, "requester_id", "idempotency_key", unique=True),
)

# The owner's fair-pay floor per currency (minor units per hour of work); no row = off.
fair_pay_floors = Table(
    "fair_pay_floors", metadata,
    Column("currency", String(3), primary_key=True),
    Column("floor_minor_per_hour", BigInteger, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("floor_minor_per_hour > 0", name="ck_fair_pay_floors_positive"),
)

outbox, inbox = add_messaging_tables(metadata)

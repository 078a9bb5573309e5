"""Ledger service RPCs: balances, history, payouts, worker share (admin), diagnostics.

HIDDEN SHARE: the models a worker or a manager can receive (``Balance``,
``History``, ``Payout``/``Payouts``) carry only what was credited to the worker,
never the share, the gross price or the platform's part. Share, price-derived
totals and platform revenue appear only in admin-only responses.

Money entering here is typed once (``contracts.money``): strict integers, never a bool
or a string, bounded; currencies from the list the ledger books. The ledger knows a
pool (its frozen price) once the pool has opened (``task.pool_opened``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictStr, model_validator

from contracts.money import AmountMinor, Currency, PositiveAmountMinor
from contracts.rpc import ADMIN, ROLES, WORKER, Page, RpcRequest, rpc

PayoutStatus = Literal["pending", "approved", "rejected"]
PayoutMethod = Literal["card", "bank_account", "phone", "wallet"]
# digits, latin letters, spaces and + - . @ _ : no markup, no control characters
DestinationDetails = Annotated[StrictStr, Field(min_length=4, max_length=64,
                                                pattern=r"^[0-9A-Za-z+@._ -]+$")]

# ----------------------------------------------------------------- worker views


class BalanceRequest(RpcRequest):
    """The actor's own balance; an admin may name any ``worker_id``."""

    worker_id: str | None = Field(None, min_length=1, max_length=64)


class CurrencyBalance(BaseModel):
    currency: str
    available_minor: int
    on_hold_minor: int
    paid_minor: int


class Balance(BaseModel):
    worker_id: str
    balances: list[CurrencyBalance]


class HistoryRequest(RpcRequest):
    """Entries of the actor's accounts, newest first; an admin may name ``worker_id``."""

    worker_id: str | None = Field(None, min_length=1, max_length=64)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    page: Page = Page()


class HistoryEntry(BaseModel):
    entry_id: int
    transfer_id: str
    kind: Literal["assignment", "bonus", "payout_hold", "payout_paid", "payout_release"]
    account: Literal["available", "on_hold", "paid"]
    amount_minor: int = Field(description="signed change of that account (worker's part only)")
    currency: str
    assignment_id: str | None = None
    bonus_id: str | None = None
    payout_id: str | None = None
    pool_id: str | None = None
    at: datetime


class History(BaseModel):
    items: list[HistoryEntry]
    total: int


class RequestPayout(RpcRequest):
    """A worker asks to withdraw ``amount_minor``; payout details go in ``comment``."""

    amount_minor: PositiveAmountMinor
    currency: Currency | None = Field(None, description="may be omitted when the worker has "
                                                        "one currency")
    comment: str = Field(min_length=1, max_length=2000)
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
        description="the same key again (same worker) returns the first payout instead of "
                    "holding the money twice; with other details it is refused (409)")
    destination_method: PayoutMethod | None = Field(
        None, description="how to pay: card, bank_account, phone (SBP) or wallet; "
                          "given together with destination_details")
    destination_details: DestinationDetails | None = Field(
        None, description="card or account number, phone or wallet id; shown in full only "
                          "to the owner who approves, masked everywhere else")

    @model_validator(mode="after")
    def _destination_whole(self) -> RequestPayout:
        if (self.destination_method is None) != (self.destination_details is None):
            raise ValueError("destination_method and destination_details go together")
        return self


class Payout(BaseModel):
    payout_id: str
    worker_id: str
    amount_minor: int
    currency: str
    comment: str
    status: PayoutStatus
    requested_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_comment: str | None = None
    destination_method: PayoutMethod | None = None
    destination_details: str | None = Field(
        None, description="in full for the owner (admin) only; everyone else sees it masked "
                          "(the last four characters)")
    destination_masked: bool = False


class Payouts(BaseModel):
    items: list[Payout]
    total: int


class MyPayouts(RpcRequest):
    status: PayoutStatus | None = None
    page: Page = Page()


# ------------------------------------------------------------------ admin views


class DecidePayout(RpcRequest):
    payout_id: str = Field(min_length=1, max_length=36)
    comment: str | None = Field(None, max_length=2000)


class ListPayouts(RpcRequest):
    status: PayoutStatus | None = None
    worker_id: str | None = Field(None, min_length=1, max_length=64)
    page: Page = Page()


class GetShare(RpcRequest):
    """The share of ``pool_id`` (its own or the default it falls back to); null = the default."""

    pool_id: str | None = Field(None, min_length=1, max_length=64)


class ShareView(BaseModel):
    pool_id: str | None
    share: str = Field(description="decimal fraction 0..1, e.g. '0.7'")
    share_bps: int
    source: Literal["pool", "default", "built_in"]
    updated_at: datetime | None = None
    updated_by: str | None = None


class SetShare(RpcRequest):
    """Set a pool's share (or the default when ``pool_id`` is null). The gateway checks the
    pool exists (in tasks) first; the share may be set while the pool is still a draft.

    ``share`` is 0.0..1.0 as a number or a decimal string, at most 4 decimals (never a
    boolean).
    """

    pool_id: str | None = Field(None, min_length=1, max_length=64)
    share: StrictFloat | Annotated[StrictStr, Field(max_length=32)] = Field(
        description="0..1 as a number or decimal string, e.g. 0.7 or '0.7000'")


class ListShares(RpcRequest):
    pass


class Shares(BaseModel):
    default: ShareView
    pools: list[ShareView]


class ShareAuditRequest(RpcRequest):
    pool_id: str | None = Field(None, min_length=1, max_length=64,
                                description="only this pool's changes; '*' = the default's")
    page: Page = Page()


class ShareChange(BaseModel):
    audit_id: int
    pool_id: str | None = Field(description="null = the default")
    old_share: str | None
    old_share_bps: int | None
    new_share: str
    new_share_bps: int
    changed_by: str
    changed_at: datetime


class ShareAudit(BaseModel):
    items: list[ShareChange]
    total: int


class DashboardRequest(RpcRequest):
    pass


class CurrencyTotals(BaseModel):
    currency: str
    charged_minor: int = Field(description="gross paid by requesters (assignments + bonuses)")
    credited_to_workers_minor: int
    assignment_credits_minor: int
    bonuses_minor: int
    platform_revenue_minor: int
    available_minor: int
    on_hold_minor: int
    paid_minor: int


class DashboardCounts(BaseModel):
    assignment_credits: int
    bonuses: int
    workers: int
    payouts_pending: int
    payouts_approved: int
    payouts_rejected: int


class Dashboard(BaseModel):
    totals: list[CurrencyTotals]
    counts: DashboardCounts


class WorkerSummaryRequest(RpcRequest):
    worker_id: str | None = Field(None, min_length=1, max_length=64)
    page: Page = Page()


class WorkerSummaryRow(BaseModel):
    worker_id: str
    currency: str
    available_minor: int
    on_hold_minor: int
    paid_minor: int
    credited_minor: int
    credits: int
    bonuses: int


class WorkerSummary(BaseModel):
    items: list[WorkerSummaryRow]
    total: int


class ConsistencyRequest(RpcRequest):
    pass


class Finding(BaseModel):
    kind: Literal["unbalanced_transfer", "mixed_currency_transfer", "balance_mismatch",
                  "negative_balance", "missing_balance"]
    subject: str = Field(description="transfer id or account id")
    expected_minor: int | None = None
    actual_minor: int | None = None
    message: str


class Consistency(BaseModel):
    ok: bool
    transfers_checked: int
    entries_checked: int
    accounts_checked: int
    findings: list[Finding]
    checked_at: datetime


# ------------------------------------------------------------------------- RPCs

BALANCE = rpc("ledger", "balance", BalanceRequest, Balance,
              "Available, on-hold and paid amounts per currency (own; admin: any worker)",
    roles={"admin", "worker"})
HISTORY = rpc("ledger", "history", HistoryRequest, History,
              "Paginated entries of the worker's accounts (own; admin: any worker)",
    roles={"admin", "worker"})
REQUEST_PAYOUT = rpc("ledger", "request_payout", RequestPayout, Payout,
                     "Worker: put an amount on hold for a payout (409 insufficient_funds)",
    roles=WORKER)
APPROVE_PAYOUT = rpc("ledger", "approve_payout", DecidePayout, Payout,
                     "Admin: pay a pending payout (gateway asks for MFA first)",
    roles=ADMIN)
REJECT_PAYOUT = rpc("ledger", "reject_payout", DecidePayout, Payout,
                    "Admin: reject a pending payout, releasing the hold",
    roles=ADMIN)
LIST_PAYOUTS = rpc("ledger", "list_payouts", ListPayouts, Payouts,
                   "Admin: payouts, filtered by status and worker",
    roles=ADMIN)
MY_PAYOUTS = rpc("ledger", "my_payouts", MyPayouts, Payouts, "The actor's own payouts",
    roles=ROLES)
GET_SHARE = rpc("ledger", "get_share", GetShare, ShareView,
                "Admin: the worker share of a pool or the default",
    roles=ADMIN)
SET_SHARE = rpc("ledger", "set_share", SetShare, ShareView,
                "Admin: set the worker share of a pool or the default (audited)",
    roles=ADMIN)
LIST_SHARES = rpc("ledger", "list_shares", ListShares, Shares,
                  "Admin: the default share and every pool's own share",
    roles=ADMIN)
SHARE_AUDIT = rpc("ledger", "share_audit", ShareAuditRequest, ShareAudit,
                  "Admin: every change of a share: who, when, old, new",
    roles=ADMIN)
OWNER_DASHBOARD = rpc("ledger", "owner_dashboard", DashboardRequest, Dashboard,
                      "Admin: money totals per currency and counts",
    roles=ADMIN)
WORKER_SUMMARY = rpc("ledger", "worker_summary", WorkerSummaryRequest, WorkerSummary,
                     "Admin: per-worker balances and credit totals",
    roles=ADMIN)
CHECK_CONSISTENCY = rpc("ledger", "check_consistency", ConsistencyRequest, Consistency,
                        "Admin: verify every transfer sums to zero and balances match entries",
    roles=ADMIN)


# ------------------------------------------------------------ requester budgets
# A requester account is a budget the owner tops up from outside (an external source
# account); a pool linked to it reserves its maximum cost when it opens, each acceptance
# and bonus spends it, closing the pool releases what is left. Admin only: an admin acts
# for the requester. A pool without a requester is funded by the platform, as before.

RequesterId = Annotated[str, Field(min_length=1, max_length=36)]


class CreateRequester(RpcRequest):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    currency: Currency


class Requester(BaseModel):
    requester_id: str
    name: str
    currency: str
    available_minor: int = Field(description="the budget not yet reserved by any pool")
    reserved_minor: int = Field(description="held by this requester's pools, not yet spent")
    created_at: datetime
    created_by: str


class Requesters(BaseModel):
    items: list[Requester]
    total: int


class GetRequester(RpcRequest):
    requester_id: RequesterId


class ListRequesters(RpcRequest):
    page: Page = Page()


class TopUp(RpcRequest):
    """Money entering the platform for a requester (from the external source account)."""

    requester_id: RequesterId
    amount_minor: PositiveAmountMinor
    comment: str = Field(min_length=1, max_length=500)
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
        description="the same key again returns the first top-up instead of adding twice")


class TopUpResult(BaseModel):
    topup_id: str
    requester: Requester
    amount_minor: int
    replayed: bool = False


class LinkPoolBudget(RpcRequest):
    """Fund a pool from a requester's budget (the gateway checked the pool and its
    currency). Set once; a pool with reservations keeps its requester."""

    pool_id: str = Field(min_length=1, max_length=64)
    requester_id: RequesterId
    currency: Currency


class PoolBudgetRequest(RpcRequest):
    pool_id: str = Field(min_length=1, max_length=64)


class ReservePoolBudget(RpcRequest):
    """Reserve what a pool can still cost before it opens: ``max_cost_minor`` (price x
    answers still possible, counted by tasks) less what it already spent and holds."""

    pool_id: str = Field(min_length=1, max_length=64)
    max_cost_minor: AmountMinor
    currency: Currency


class PoolBudget(BaseModel):
    pool_id: str
    funded_by: Literal["requester", "platform"]
    requester_id: str | None = None
    currency: str | None = None
    reserved_minor: int = Field(0, description="moved from the budget to the pool, in total")
    released_minor: int = Field(0, description="moved back to the budget, in total")
    spent_minor: int = Field(0, description="paid for acceptances and bonuses, in total")
    spent_from_reserve_minor: int = 0
    spent_from_available_minor: int = Field(
        0, description="spent straight from the budget (bonuses, or a reserve that ran short)")
    remaining_minor: int = Field(0, description="still reserved for this pool")
    worker_credits_minor: int = 0
    platform_credits_minor: int = 0
    reserved_now_minor: int = Field(0, description="what this call reserved or released")


CREATE_REQUESTER = rpc("ledger", "create_requester", CreateRequester, Requester,
                       "Admin: a requester account (a budget in one currency)", roles=ADMIN)
GET_REQUESTER = rpc("ledger", "get_requester", GetRequester, Requester,
                    "Admin: a requester's available and reserved budget", roles=ADMIN)
LIST_REQUESTERS = rpc("ledger", "list_requesters", ListRequesters, Requesters,
                      "Admin: requester accounts with their budgets", roles=ADMIN)
TOP_UP = rpc("ledger", "top_up", TopUp, TopUpResult,
             "Admin (owner): add money to a requester's budget from the external source",
             roles=ADMIN)
LINK_POOL_BUDGET = rpc("ledger", "link_pool_budget", LinkPoolBudget, PoolBudget,
                       "Admin: fund a pool from a requester's budget", roles=ADMIN)
GET_POOL_BUDGET = rpc("ledger", "get_pool_budget", PoolBudgetRequest, PoolBudget,
                      "Admin: a pool's reserved, spent and released money", roles=ADMIN)
RESERVE_POOL_BUDGET = rpc("ledger", "reserve_pool_budget", ReservePoolBudget, PoolBudget,
                          "Admin: reserve a pool's maximum cost before it opens "
                          "(409 budget_insufficient)", roles=ADMIN)
RELEASE_POOL_BUDGET = rpc("ledger", "release_pool_budget", PoolBudgetRequest, PoolBudget,
                          "Admin: give back what a closed pool did not spend", roles=ADMIN)

# ------------------------------------------------------------------ fair-pay floor


class FairPayFloor(BaseModel):
    """The owner's floor of a worker's effective hourly earning in one currency: pools
    estimated below it do not open (the gateway checks at open)."""

    currency: Currency
    floor_minor_per_hour: int = Field(description="minor units per hour of work")
    updated_by: str
    updated_at: datetime


class ListFairPayFloors(RpcRequest):
    pass


class FairPayFloors(BaseModel):
    items: list[FairPayFloor] = Field(description="only currencies with a floor: none = off")


class SetFairPayFloor(RpcRequest):
    """Set the floor of ``currency`` (an absolute setter); null turns it off."""

    currency: Currency
    floor_minor_per_hour: PositiveAmountMinor | None


class FairPayFloorChange(BaseModel):
    currency: Currency
    old_minor_per_hour: int | None
    new_minor_per_hour: int | None


LIST_FAIR_PAY_FLOORS = rpc("ledger", "list_fair_pay_floors", ListFairPayFloors, FairPayFloors,
                           "Admin: the fair-pay floor of every currency that has one",
                           roles=ADMIN)
SET_FAIR_PAY_FLOOR = rpc("ledger", "set_fair_pay_floor", SetFairPayFloor, FairPayFloorChange,
                         "Admin (owner): set or turn off a currency's fair-pay floor",
                         roles=ADMIN)

"""A user's own data, in one download: what the platform holds on them, gathered from the
services that hold it (the gateway's account, tasks' assignments with every answer and the
restrictions in force, the ledger's balance, entries and payouts, support's terms acceptance,
tickets and chat messages). Only the caller's own records, never a price, a share or a
private reason of a restriction: each part comes through the same worker-facing RPC the
worker's screens use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from contracts.rpc import Page
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AnyActor, MfaAdmin, Rpc, Security, Session
from gateway_service.errors import ApiError
from gateway_service.security.accounts import cannot_erase_admin

router = APIRouter(tags=["my data"])

T = TypeVar("T")
PAGE = 500
# a bound on one export (a worker with more gets a clear refusal, never a partial file)
MAX_ITEMS = 200_000


class Account(BaseModel):
    user_id: str
    login: str
    role: str
    created_at: datetime
    password_changed_at: datetime | None
    mfa_enabled: bool


class WorkerPart(BaseModel):
    trust_level: tasks_rpc.TrustLevel
    skills: dict[str, int]
    restrictions: list[tasks_rpc.Restriction] = Field(description="in force now")
    assignments: list[tasks_rpc.Assignment] = Field(
        description="every assignment with the answers, comment and proof given")
    balance: ledger_rpc.Balance
    ledger: list[ledger_rpc.HistoryEntry]
    payouts: list[ledger_rpc.Payout]
    terms: support_rpc.TermsStatus


class MyData(BaseModel):
    generated_at: datetime
    account: Account
    worker: WorkerPart | None = Field(description="null for managers and admins")
    tickets: list[support_rpc.TicketThread] = Field(description="own tickets with threads")
    chat_messages: list[support_rpc.ChatMessage] = Field(
        description="messages the user wrote, from the latest 500 of each thread they see")


async def _every(fetch: Callable[[Page], Awaitable[Any]], what: str) -> list[Any]:
    """All pages of a listing (``items`` and ``total``)."""
    out: list[Any] = []
    while True:
        page = await fetch(Page(limit=PAGE, offset=len(out)))
        out += page.items
        if not page.items or len(out) >= page.total:
            return out
        if len(out) > MAX_ITEMS:
            raise ApiError(413, "export_too_large",
                           f"more than {MAX_ITEMS} {what}: ask support for an export")


async def _worker_part(actor: Any, rpc: Any) -> WorkerPart:
    profile = await rpc.call(tasks_rpc.GET_WORKER_PROFILE, tasks_rpc.WorkerProfileGet(
        actor=actor, worker_id=actor.user_id))
    assignments = await _every(lambda p: rpc.call(tasks_rpc.MY_ASSIGNMENTS,
                                                  tasks_rpc.MyAssignments(actor=actor, page=p)),
                               "assignments")
    ledger = await _every(lambda p: rpc.call(ledger_rpc.HISTORY, ledger_rpc.HistoryRequest(
        actor=actor, page=p)), "ledger entries")
    payouts = await _every(lambda p: rpc.call(ledger_rpc.MY_PAYOUTS, ledger_rpc.MyPayouts(
        actor=actor, page=p)), "payouts")
    balance = await rpc.call(ledger_rpc.BALANCE, ledger_rpc.BalanceRequest(actor=actor))
    terms = await rpc.call(support_rpc.TERMS_STATUS, support_rpc.TermsStatusGet(actor=actor))
    return WorkerPart(trust_level=profile.trust_level, skills=profile.skills,
                      restrictions=profile.restrictions, assignments=assignments,
                      balance=balance, ledger=ledger, payouts=payouts, terms=terms)


async def _support_part(actor: Any, rpc: Any) -> tuple[list[Any], list[Any]]:
    tickets = await _every(lambda p: rpc.call(support_rpc.LIST_TICKETS, support_rpc.TicketList(
        actor=actor, page=p)), "tickets")
    mine = [t for t in tickets if t.user_id == actor.user_id]
    threads = [await rpc.call(support_rpc.GET_TICKET, support_rpc.TicketRef(
        actor=actor, ticket_id=t.ticket_id)) for t in mine]
    listed = await rpc.call(support_rpc.CHAT_THREADS,
                            support_rpc.ChatThreadsRequest(actor=actor, limit=200))
    refs = [(th.kind, th.ref) for th in listed.threads] + [("pool", p) for p in listed.pools]
    messages: list[Any] = []
    for kind, ref in refs:
        got = await rpc.call(support_rpc.LIST_CHAT, support_rpc.ChatList(
            actor=actor, kind=kind, ref=ref, limit=500))
        messages += [m for m in got.items if m.author_id == actor.user_id]
    return threads, messages


@router.get("/me/data", response_model=MyData,
            summary="Everything the platform holds on me, as one JSON download",
            description="Account, assignments with every answer, restrictions in force, "
                        "balance, ledger entries, payouts, terms acceptance, tickets and the "
                        "chat messages I wrote. Served as an attachment.")
async def my_data(actor: AnyActor, session: Session, security: Security, rpc: Rpc,
                  response: Response) -> MyData:
    user = await security.accounts.get_user(actor.user_id)
    me = await security.accounts.me(session)
    worker = await _worker_part(actor, rpc) if actor.role == "worker" else None
    tickets, messages = await _support_part(actor, rpc)
    now = datetime.now(UTC)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="my-data-{now:%Y-%m-%d}.json"')
    response.headers["Cache-Control"] = "no-store"
    return MyData(generated_at=now,
                  account=Account(user_id=user.user_id, login=user.login, role=user.role,
                                  created_at=user.created_at,
                                  password_changed_at=user.password_changed_at,
                                  mfa_enabled=me.mfa_enabled),
                  worker=worker, tickets=tickets, chat_messages=messages)


# ------------------------------------------------------------------------------ erasure

class ErasureRequest(BaseModel):
    message: str | None = Field(None, max_length=2000,
                                description="anything the user wants the staff to know")


ERASURE_SUBJECT = "Удаление персональных данных / Erasure of personal data"


@router.post("/me/erasure", response_model=support_rpc.Ticket, status_code=201,
             summary="Ask for the erasure of my personal data (a support ticket)",
             description="The request reaches the staff as a ticket; an admin carries it out "
                         "once the balance is paid out. Money records stay, under the "
                         "account's opaque id.")
async def request_erasure(actor: AnyActor, rpc: Rpc, body: ErasureRequest) -> support_rpc.Ticket:
    if actor.role == "admin":
        raise cannot_erase_admin()
    text = "Прошу удалить мои персональные данные. / Please erase my personal data."
    if body.message and body.message.strip():
        text += "\n\n" + body.message.strip()
    return await rpc.call(support_rpc.CREATE_TICKET, support_rpc.TicketCreate(
        actor=actor, subject=ERASURE_SUBJECT, text=text))


class ErasureDone(BaseModel):
    user_id: str
    login: str = Field(description="the account's login from now on")
    sessions_revoked: int
    support: support_rpc.Erased


@router.post("/admin/users/{user_id}/erase", response_model=ErasureDone,
             tags=["admin: users"],
             summary="Erase a user's personal data (MFA step-up; audited)",
             description="Refused while the worker has money available or on hold (pay it "
                         "out first). Support's texts by the user become a marker, the login "
                         "becomes erased-<id>, the password, second factor and login links "
                         "are gone, every session ends. Answers and money records stay under "
                         "the opaque id. Idempotent.")
async def erase_user(session: MfaAdmin, rpc: Rpc, security: Security, address: Address,
                     user_id: Annotated[str, PathParam(min_length=1, max_length=64)]
                     ) -> ErasureDone:
    user = await security.accounts.get_user(user_id)
    if user.role == "admin":
        raise cannot_erase_admin()
    if user.role == "worker":
        balance = await rpc.call(ledger_rpc.BALANCE, ledger_rpc.BalanceRequest(
            actor=session.actor, worker_id=user_id))
        owed = [b for b in balance.balances if b.available_minor or b.on_hold_minor]
        if owed:
            raise ApiError(409, "erasure_money_pending",
                           "the worker still has money available or on hold: pay it out "
                           "(or reject the payout) first",
                           details=[b.model_dump() for b in owed])
    erased = await rpc.call(support_rpc.ERASE_USER, support_rpc.EraseUser(
        actor=session.actor, user_id=user_id))
    login, revoked = await security.accounts.erase(
        session, user_id, {"support": erased.model_dump(exclude={"user_id"})}, address)
    return ErasureDone(user_id=user_id, login=login, sessions_revoked=revoked, support=erased)

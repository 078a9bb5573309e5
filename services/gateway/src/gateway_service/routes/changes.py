# mypy: disable-error-code="valid-type"
"""Configuration changes ("safe mode"): staff propose a change to one setting as a diff
against its current value, nothing changes until an admin confirms it (a money setting
with the MFA step-up), an admin may also patch directly, and every applied change can be
reverted by a new change. How a change is carried out: ``gateway_service.changes``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from contracts.rpc import Actor, Page
from contracts.rpc import support as support_rpc
from gateway_service import changes
from gateway_service.deps import Address, AdminActor, Rpc, Security, Session, StaffActor
from gateway_service.errors import ApiError
from gateway_service.routes.common import page
from gateway_service.security import SecurityLayer
from gateway_service.security.sessions import SessionInfo
from servicekit.rpc import RpcClient

router = APIRouter(tags=["admin: changes"])

ChangeId = Annotated[str, Path(min_length=1, max_length=36)]
PageQ = Annotated[Page, Depends(page)]
# the MFA step-up's own throttle
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too_many_attempts: Retry-After says when to try again"}}


class StepUp(BaseModel):
    mfa_code: str | None = Field(None, max_length=16, description=(
        "a TOTP code: needed for a money setting unless the session is already elevated"))
    recovery_code: str | None = Field(None, max_length=32,
                                      description="instead of mfa_code: a recovery code")


class ProposeBody(BaseModel):
    setting: support_rpc.Setting
    reason: str = Field("", max_length=2000)
    source: support_rpc.ChangeSource = Field("staff", description=(
        "where the proposal comes from: a person, or a suggestion of the assistant or the "
        "diagnostics that a person forwards"))


class PatchBody(StepUp):
    setting: support_rpc.Setting
    reason: str = Field("", max_length=2000)


class ConfirmBody(StepUp):
    reason: str = Field("", max_length=2000)


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RevertBody(StepUp):
    reason: str = Field("", max_length=2000)
    patch: bool = Field(False, description="an admin applies the revert at once instead of "
                                           "proposing it")


class ChangeView(support_rpc.Change):
    proposed_by_login: str | None = Field(None, description="the proposer's login")
    decided_by_login: str | None = Field(None, description="the login of who decided it")


class ChangesView(BaseModel):
    items: list[ChangeView]
    total: int


async def _named(security: SecurityLayer, items: list[support_rpc.Change]) -> list[ChangeView]:
    """The changes with the logins of who proposed and decided them: the gateway keeps the
    accounts, and a manager may not list users to look them up."""
    logins = await security.accounts.logins(
        [u for c in items for u in (c.proposed_by, c.decided_by)])
    return [ChangeView(**c.model_dump(), proposed_by_login=logins.get(c.proposed_by),
                       decided_by_login=logins.get(c.decided_by or "")) for c in items]


def _admin(session: SessionInfo) -> Actor:
    if session.role != "admin":
        raise ApiError(403, "forbidden", "this needs the role admin")
    return session.actor


async def _money_step_up(security: SecurityLayer, session: SessionInfo, body: StepUp,
                         address: str | None) -> None:
    """A money setting needs the MFA step-up payouts use: an elevated session, or a code
    in the request (which elevates it, as POST /api/auth/mfa/step-up does)."""
    if session.mfa_elevated:
        return
    if not (body.mfa_code or body.recovery_code):
        raise ApiError(403, "mfa_required", "a money setting needs the MFA step-up: send "
                                            "mfa_code (or POST /api/auth/mfa/step-up first)")
    until = await security.mfa.step_up(session, body.mfa_code or None,
                                       body.recovery_code or None, address)
    # this request's copy of the session, so a later check in it does not ask again
    session.mfa_elevated, session.mfa_elevated_until = True, until


def _audit_details(change: support_rpc.Change) -> dict[str, Any]:
    return {"kind": change.kind, "target": change.target, "before": change.before,
            "after": change.after, "patch": change.patch, "reverts": change.reverts,
            "reason": change.decision_reason or change.reason, "error": change.error,
            "current": change.current}


async def _audit(security: SecurityLayer, actor: Actor, change: support_rpc.Change,
                 address: str | None, kind: str | None = None) -> None:
    await security.audit.record(f"config_change.{kind or change.state}", actor.user_id,
                                change.change_id, _audit_details(change), address=address)


async def _propose(rpc: RpcClient, actor: Actor, setting: changes.SettingModel, *, reason: str,
                   source: support_rpc.ChangeSource = "staff", patch: bool = False,
                   reverts: str | None = None,
                   before: Any = None) -> support_rpc.Change:
    """Validate with the owner and store the proposal with the owner's current value."""
    if before is None:
        before = await changes.current_value(rpc, setting)
    await changes.validate(rpc, setting)
    return await rpc.call(support_rpc.PROPOSE_CHANGE, support_rpc.ProposeChange(
        actor=actor, setting=setting, before=before, reason=reason, source=source,
        patch=patch, reverts=reverts))


async def _confirm(rpc: RpcClient, security: SecurityLayer, session: SessionInfo,
                   change: support_rpc.Change, body: StepUp, reason: str,
                   address: str | None) -> support_rpc.Change:
    actor = _admin(session)
    if change.money:
        await _money_step_up(security, session, body, address)
    done, refusal = await changes.carry_out(rpc, actor, change, reason)
    await _audit(security, actor, done, address,
                 "patched" if done.patch and done.state == "applied" else None)
    if refusal is not None:
        refusal.details = {**(refusal.details or {}), "change_id": done.change_id,
                           "state": done.state}
        raise refusal
    return done


@router.get("/admin/changes", response_model=ChangesView,
            summary="Configuration changes with their diffs, newest first (managers see no "
                    "money setting)")
async def list_changes(actor: StaffActor, rpc: Rpc, security: Security, p: PageQ,
                       state: Annotated[support_rpc.ChangeState | None, Query()] = None,
                       kind: Annotated[support_rpc.ChangeKind | None, Query()] = None,
                       ) -> ChangesView:
    page_ = await rpc.call(support_rpc.LIST_CHANGES, support_rpc.ChangeList(
        actor=actor, state=state, kind=kind, page=p))
    return ChangesView(items=await _named(security, page_.items), total=page_.total)


@router.get("/admin/changes/{change_id}", response_model=ChangeView,
            summary="One configuration change: the setting, its value then and the proposed one")
async def get_change(actor: StaffActor, rpc: Rpc, security: Security,
                     change_id: ChangeId) -> ChangeView:
    change = await rpc.call(support_rpc.GET_CHANGE, support_rpc.ChangeRef(
        actor=actor, change_id=change_id))
    [named] = await _named(security, [change])
    return named


@router.post("/admin/changes", response_model=support_rpc.Change,
             status_code=status.HTTP_201_CREATED,
             summary="Propose a change to one setting (validated by its owner); nothing "
                     "changes until an admin confirms it")
async def propose(actor: StaffActor, rpc: Rpc, security: Security, address: Address,
                  body: ProposeBody) -> support_rpc.Change:
    change = await _propose(rpc, actor, body.setting, reason=body.reason, source=body.source)
    await _audit(security, actor, change, address)
    return change


@router.post("/admin/changes/patch", response_model=support_rpc.Change,
             status_code=status.HTTP_201_CREATED, responses=THROTTLED,
             summary="Manual patch: an admin applies a change at once (validated, audited, "
                     "MFA for money)")
async def patch(session: Session, rpc: Rpc, security: Security, address: Address,
                body: PatchBody) -> support_rpc.Change:
    actor = _admin(session)
    if body.setting.kind in support_rpc.MONEY_KINDS:
        await _money_step_up(security, session, body, address)
    change = await _propose(rpc, actor, body.setting, reason=body.reason, patch=True)
    return await _confirm(rpc, security, session, change, body, body.reason, address)


@router.post("/admin/changes/{change_id}/confirm", response_model=support_rpc.Change,
             responses=THROTTLED,
             summary="Confirm a proposed change: its owner applies it (refused as stale when "
                     "the value changed since); money settings need the MFA step-up")
async def confirm(session: Session, rpc: Rpc, security: Security, address: Address,
                  change_id: ChangeId, body: ConfirmBody | None = None) -> support_rpc.Change:
    actor = _admin(session)
    body = body or ConfirmBody()
    change = await rpc.call(support_rpc.GET_CHANGE, support_rpc.ChangeRef(
        actor=actor, change_id=change_id))
    if change.state == "applied":
        return change  # a repeated confirmation (its first answer was lost): nothing to do
    if change.state != "proposed":
        raise ApiError(409, "change_not_proposed", f"the change is already {change.state}",
                       details={"state": change.state})
    return await _confirm(rpc, security, session, change, body, body.reason, address)


@router.post("/admin/changes/{change_id}/reject", response_model=support_rpc.Change,
             summary="Reject a proposed change (who and why are recorded)")
async def reject(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                 change_id: ChangeId, body: RejectBody) -> support_rpc.Change:
    change = await rpc.call(support_rpc.DECIDE_CHANGE, support_rpc.DecideChange(
        actor=actor, change_id=change_id, outcome="rejected", reason=body.reason))
    await _audit(security, actor, change, address)
    return change


@router.post("/admin/changes/{change_id}/revert", response_model=support_rpc.Change,
             status_code=status.HTTP_201_CREATED, responses=THROTTLED,
             summary="Revert an applied change: a new change back to its old value, proposed "
                     "(or patched at once by an admin)")
async def revert(session: Session, rpc: Rpc, security: Security, address: Address,
                 change_id: ChangeId, body: RevertBody | None = None) -> support_rpc.Change:
    if session.role not in ("manager", "admin"):
        raise ApiError(403, "forbidden", "this needs the role manager or admin")
    body = body or RevertBody()
    actor = _admin(session) if body.patch else session.actor
    undone = await rpc.call(support_rpc.GET_CHANGE, support_rpc.ChangeRef(
        actor=actor, change_id=change_id))
    if undone.state != "applied" or undone.reverted_by is not None:
        raise ApiError(409, "change_not_revertible",
                       "only an applied change that was not reverted yet can be reverted",
                       details={"state": undone.state, "reverted_by": undone.reverted_by})
    setting = changes.setting_of(undone, undone.before)
    current = await changes.current_value(rpc, setting)
    if current != undone.after:
        raise ApiError(409, "proposal_stale", "the setting changed after this change was "
                       "applied: a revert would undo that too; propose the value you want",
                       details={"after": undone.after, "current": current})
    if body.patch and undone.money:
        await _money_step_up(security, session, body, address)
    reason = body.reason
    change = await _propose(rpc, actor, setting, reason=reason, patch=body.patch,
                            reverts=undone.change_id, before=current)
    if not body.patch:
        await _audit(security, actor, change, address)
        return change
    return await _confirm(rpc, security, session, change, body, reason, address)

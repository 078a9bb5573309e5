# mypy: disable-error-code="valid-type"
"""Manual control and appeals: staff restrict a worker or set a skill by hand, admins
edit a rule in place (versioned), workers see why they were restricted and appeal a
rejection or a restriction once, managers decide. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field

from contracts.rpc import Actor, Page
from contracts.rpc import review as review_rpc
from contracts.rpc import rules as rules_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security, StaffActor, WorkerActor
from gateway_service.errors import ApiError
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page
from gateway_service.routes.worker_views import GATEWAY_ACTOR
from servicekit.rpc import RpcClient

router = APIRouter(tags=["control"])

Id = Annotated[str, Path(min_length=1, max_length=64)]
SkillName = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]

RestrictBody = body_of(rules_rpc.RestrictWorker, "RestrictBody", without={"worker_id"})
EditRuleBody = body_of(rules_rpc.EditRule, "EditRuleBody", without={"rule_id"})
AppealBody = body_of(review_rpc.FileAppeal, "AppealBody", without={"pool_id"})
AppealDecisionBody = body_of(review_rpc.DecideAppeal, "AppealDecisionBody",
                             without={"appeal_id"})


class SkillBody(BaseModel):
    value: int = Field(ge=0, le=100)


# ------------------------------------------------------------------ rule versions


@router.put("/admin/rules/{rule_id}", response_model=rules_rpc.Rule, tags=["admin: rules"],
            summary="Edit a rule's name, conditions and action: a new version (audited)")
async def edit_rule(actor: AdminActor, rpc: Rpc, rule_id: Id, body: EditRuleBody,
                    security: Security, address: Address) -> rules_rpc.Rule:
    edited = await rpc.call(rules_rpc.EDIT_RULE, request_of(
        body, rules_rpc.EditRule, actor=actor, rule_id=rule_id))
    await security.audit.record("rule.edited", actor.user_id, rule_id,
                                {"version": edited.version, "name": edited.name,
                                 "conditions": edited.conditions, "action": edited.action,
                                 "evidence_public": edited.evidence_public},
                                address=address)
    return edited


class RuleVersionView(rules_rpc.RuleVersion):
    edited_by_login: str | None = Field(None, description="the login of who wrote it")


class RuleVersionsView(BaseModel):
    items: list[RuleVersionView]


@router.get("/rule-versions/{rule_id}", response_model=RuleVersionsView,
            tags=["rules"], summary="Every version of a rule, newest first, with who wrote it")
async def rule_versions(actor: StaffActor, rpc: Rpc, security: Security,
                        rule_id: Id) -> RuleVersionsView:
    versions = await rpc.call(rules_rpc.RULE_VERSIONS, rules_rpc.RuleRef(actor=actor,
                                                                         rule_id=rule_id))
    logins = await security.accounts.logins(v.edited_by for v in versions.items)
    return RuleVersionsView(items=[
        RuleVersionView(**v.model_dump(), edited_by_login=logins.get(v.edited_by))
        for v in versions.items])


# -------------------------------------------------------------- manual control


async def _a_worker(security: Security, worker_id: str) -> None:
    """Staff act on workers' accounts only: 404 ``user_not_found``, 422 ``not_a_worker``."""
    user = await security.accounts.get_user(worker_id)
    if user.role != "worker":
        raise ApiError(422, "not_a_worker", f"{worker_id} is a {user.role}, not a worker")


async def _place_exists(rpc: RpcClient, actor: Actor, body: BaseModel) -> None:
    """The pool or project a manual restriction names must exist (404 from tasks)."""
    scope, pool_id, project_id = (getattr(body, k, None)
                                  for k in ("scope", "pool_id", "project_id"))
    if scope == "pool" and pool_id is not None:
        await rpc.call(tasks_rpc.GET_POOL, tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))
    if scope == "project" and project_id is not None:
        await rpc.call(tasks_rpc.GET_PROJECT, tasks_rpc.ProjectGet(actor=actor,
                                                                   project_id=project_id))


@router.post("/admin/workers/{worker_id}/restrictions", response_model=rules_rpc.Restriction,
             status_code=status.HTTP_201_CREATED, tags=["admin: workers"],
             summary="Block, restrict or suspend a worker by hand, with a private reason "
                     "(audited)")
async def restrict_worker(actor: StaffActor, rpc: Rpc, worker_id: Id, body: RestrictBody,
                          security: Security, address: Address) -> rules_rpc.Restriction:
    await _a_worker(security, worker_id)
    await _place_exists(rpc, actor, body)
    made = await rpc.call(rules_rpc.RESTRICT_WORKER, request_of(
        body, rules_rpc.RestrictWorker, actor=actor, worker_id=worker_id))
    await security.audit.record("worker.restricted", actor.user_id, worker_id, {
        "restriction_id": made.restriction_id, "scope": made.scope, "pool_id": made.pool_id,
        "project_id": made.project_id,
        "until": made.until.isoformat() if made.until else None,
        "private_comment": made.private_comment}, address=address)
    return made


async def _set_skill(actor: Actor, rpc: RpcClient, worker_id: str, skill: str,
                     value: int | None, security: Security,
                     address: str | None) -> rules_rpc.ManualSkill:
    await _a_worker(security, worker_id)
    done = await rpc.call(rules_rpc.SET_WORKER_SKILL, rules_rpc.SetWorkerSkill(
        actor=actor, worker_id=worker_id, skill=skill, value=value))
    await security.audit.record("worker.skill_set" if value is not None
                                else "worker.skill_removed", actor.user_id, worker_id,
                                {"skill": skill, "value": value}, address=address)
    return done


@router.put("/admin/workers/{worker_id}/skills/{skill}", response_model=rules_rpc.ManualSkill,
            tags=["admin: workers"], summary="Set a worker's skill by hand (audited)")
async def set_skill(actor: StaffActor, rpc: Rpc, worker_id: Id, skill: SkillName,
                    body: SkillBody, security: Security,
                    address: Address) -> rules_rpc.ManualSkill:
    return await _set_skill(actor, rpc, worker_id, skill, body.value, security, address)


@router.delete("/admin/workers/{worker_id}/skills/{skill}",
               response_model=rules_rpc.ManualSkill, tags=["admin: workers"],
               summary="Remove a worker's skill by hand (audited)")
async def remove_skill(actor: StaffActor, rpc: Rpc, worker_id: Id, skill: SkillName,
                       security: Security, address: Address) -> rules_rpc.ManualSkill:
    return await _set_skill(actor, rpc, worker_id, skill, None, security, address)


# ---------------------------------------------------------- the worker's side


@router.get("/worker/restrictions", response_model=rules_rpc.WorkerRestrictions,
            tags=["worker"],
            summary="My restrictions with their causes: the rule and its version, the counts "
                    "and thresholds, or a manager's hand")
async def my_restrictions(actor: WorkerActor, rpc: Rpc,
                          p: PageQ) -> rules_rpc.WorkerRestrictions:
    return await rpc.call(rules_rpc.MY_RESTRICTIONS, rules_rpc.MyRestrictions(actor=actor,
                                                                              page=p))


async def _own_restriction(rpc: RpcClient, worker_id: str,
                           restriction_id: str) -> rules_rpc.Restriction:
    """The caller's restriction in force (the rules service owns restrictions)."""
    found = await rpc.call(rules_rpc.LIST_RESTRICTIONS, rules_rpc.ListRestrictions(
        actor=GATEWAY_ACTOR, worker_id=worker_id, active_only=True, page=Page(limit=500)))
    for r in found.items:
        if r.restriction_id == restriction_id:
            return r
    raise ApiError(404, "appeal_subject_not_found",
                   f"you have no restriction in force {restriction_id}")


@router.post("/worker/appeals", response_model=review_rpc.Appeal,
             status_code=status.HTTP_201_CREATED, tags=["worker"],
             summary="Appeal a rejection or a restriction once, with a message")
async def file_appeal(actor: WorkerActor, rpc: Rpc, body: AppealBody) -> review_rpc.Appeal:
    req = request_of(body, review_rpc.FileAppeal, actor=actor)
    if req.kind == "restriction":
        held = await _own_restriction(rpc, actor.user_id, req.subject_id)
        req = req.model_copy(update={"pool_id": held.pool_id})
    return await rpc.call(review_rpc.FILE_APPEAL, req)


@router.get("/worker/appeals", response_model=review_rpc.Appeals, tags=["worker"],
            summary="My appeals and their outcomes")
async def my_appeals(actor: WorkerActor, rpc: Rpc, p: PageQ) -> review_rpc.Appeals:
    return await rpc.call(review_rpc.LIST_APPEALS, review_rpc.ListAppeals(actor=actor, page=p))


# ------------------------------------------------------------ managers decide


@router.get("/appeals", response_model=review_rpc.Appeals, tags=["review"],
            summary="Workers' appeals, newest first (pending ones to decide)")
async def list_appeals(actor: StaffActor, rpc: Rpc, p: PageQ,
                       status: Literal["pending", "upheld", "denied"] | None = None,
                       worker_id: QueryId = None) -> review_rpc.Appeals:
    return await rpc.call(review_rpc.LIST_APPEALS, review_rpc.ListAppeals(
        actor=actor, status=status, worker_id=worker_id, page=p))


@router.post("/admin/appeals/{appeal_id}/decision", response_model=review_rpc.Appeal,
             tags=["admin: workers"],
             summary="Uphold (pay the rejected work or lift the restriction) or deny an "
                     "appeal, with a reply (audited)")
async def decide_appeal(actor: StaffActor, rpc: Rpc, appeal_id: Id, body: AppealDecisionBody,
                        security: Security, address: Address) -> review_rpc.Appeal:
    decided = await rpc.call(review_rpc.DECIDE_APPEAL, request_of(
        body, review_rpc.DecideAppeal, actor=actor, appeal_id=appeal_id))
    await security.audit.record("appeal.decided", actor.user_id, decided.worker_id, {
        "appeal_id": appeal_id, "kind": decided.kind, "subject_id": decided.subject_id,
        "outcome": decided.status}, address=address)
    return decided

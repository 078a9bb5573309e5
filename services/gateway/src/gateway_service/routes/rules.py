# mypy: disable-error-code="valid-type"
"""Quality-control rules: managers read, explain and backtest; admins create and change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from contracts.rpc import Actor, Page
from contracts.rpc import rules as rules_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security, StaffActor
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page
from servicekit.rpc import RpcClient

router = APIRouter(tags=["rules"])

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]


RuleEnabledBody = body_of(rules_rpc.UpdateRule, "RuleEnabledBody", without={"rule_id"})
BacktestBody = body_of(rules_rpc.Backtest, "BacktestBody")


@router.get("/rules", response_model=rules_rpc.Rules,
            summary="Quality-control rules, optionally of one pool or project")
async def list_rules(actor: StaffActor, rpc: Rpc, p: PageQ, pool_id: QueryId = None,
                     project_id: QueryId = None,
                     include_deleted: bool = False) -> rules_rpc.Rules:
    return await rpc.call(rules_rpc.LIST_RULES, rules_rpc.ListRules(
        actor=actor, pool_id=pool_id, project_id=project_id, include_deleted=include_deleted,
        page=p))


@router.get("/rules/{rule_id}", response_model=rules_rpc.Rule, summary="One rule")
async def get_rule(actor: StaffActor, rpc: Rpc, rule_id: Id) -> rules_rpc.Rule:
    return await rpc.call(rules_rpc.GET_RULE, rules_rpc.RuleRef(actor=actor, rule_id=rule_id))


@router.get("/rules/explain/{worker_id}", response_model=rules_rpc.WorkerExplanation,
            summary="Why rules acted on a worker: every firing with its facts")
async def explain_worker(actor: StaffActor, rpc: Rpc, worker_id: Id, p: PageQ,
                         pool_id: QueryId = None,
                         rule_id: QueryId = None) -> rules_rpc.WorkerExplanation:
    return await rpc.call(rules_rpc.EXPLAIN_WORKER, rules_rpc.ExplainWorker(
        actor=actor, worker_id=worker_id, pool_id=pool_id, rule_id=rule_id, page=p))


@router.post("/rules/backtest", response_model=rules_rpc.BacktestResult,
             summary="Dry-run a draft rule over recorded events: whom it would have hit")
async def backtest(actor: StaffActor, rpc: Rpc, body: BacktestBody) -> rules_rpc.BacktestResult:
    return await rpc.call(rules_rpc.BACKTEST, request_of(body, rules_rpc.Backtest, actor=actor),
                          timeout_s=60)


@router.get("/restrictions", response_model=rules_rpc.Restrictions,
            summary="Restrictions applied by rules (active ones by default)")
async def list_restrictions(actor: StaffActor, rpc: Rpc, p: PageQ, worker_id: QueryId = None,
                            pool_id: QueryId = None,
                            active_only: bool = True) -> rules_rpc.Restrictions:
    return await rpc.call(rules_rpc.LIST_RESTRICTIONS, rules_rpc.ListRestrictions(
        actor=actor, worker_id=worker_id, pool_id=pool_id, active_only=active_only, page=p))


@router.post("/admin/rules", response_model=rules_rpc.Rule, status_code=status.HTTP_201_CREATED,
             tags=["admin: rules"],
             summary="Create a rule (an incomplete rule is refused with the missing fields)")
async def create_rule(actor: AdminActor, rpc: Rpc, body: rules_rpc.RuleDraft) -> rules_rpc.Rule:
    await _referenced_exist(rpc, actor, body)
    return await rpc.call(rules_rpc.CREATE_RULE, rules_rpc.CreateRule(actor=actor, rule=body))


async def _referenced_exist(rpc: RpcClient, actor: Actor, rule: rules_rpc.RuleDraft) -> None:
    """The pool or project a rule names must exist (404 pool_not_found/project_not_found
    from tasks, which owns them): checked where the rule is entered, not when it fires."""
    if rule.pool_id is not None:
        await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=actor,
                                                                   pool_id=rule.pool_id))
    if rule.project_id is not None:
        await rpc.call(tasks_rpc.GET_PROJECT, tasks_rpc.ProjectGet(actor=actor,
                                                                   project_id=rule.project_id))


@router.patch("/admin/rules/{rule_id}", response_model=rules_rpc.Rule, tags=["admin: rules"],
              summary="Enable or disable a rule")
async def update_rule(actor: AdminActor, rpc: Rpc, rule_id: Id,
                      body: RuleEnabledBody) -> rules_rpc.Rule:
    return await rpc.call(rules_rpc.UPDATE_RULE, request_of(
        body, rules_rpc.UpdateRule, actor=actor, rule_id=rule_id))


@router.delete("/admin/rules/{rule_id}", response_model=rules_rpc.Rule, tags=["admin: rules"],
               summary="Delete a rule (kept for the audit of its past firings)")
async def delete_rule(actor: AdminActor, rpc: Rpc, rule_id: Id) -> rules_rpc.Rule:
    return await rpc.call(rules_rpc.DELETE_RULE, rules_rpc.RuleRef(actor=actor, rule_id=rule_id))


@router.post("/admin/restrictions/{restriction_id}/lift", response_model=rules_rpc.Restriction,
             tags=["admin: rules"], summary="Lift a restriction before its time (audited)")
async def lift_restriction(actor: AdminActor, rpc: Rpc, restriction_id: Id, security: Security,
                           address: Address) -> rules_rpc.Restriction:
    lifted = await rpc.call(rules_rpc.LIFT_RESTRICTION, rules_rpc.LiftRestriction(
        actor=actor, restriction_id=restriction_id))
    await security.audit.record("restriction.lifted", actor.user_id, lifted.worker_id,
                                {"restriction_id": restriction_id, "rule_id": lifted.rule_id},
                                address=address)
    return lifted

"""Quality-control rules: managers read, explain and backtest; admins create and change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field

from contracts.rpc import Page
from contracts.rpc import rules as rules_rpc
from gateway_service.deps import AdminActor, Rpc, StaffActor
from gateway_service.routes.common import page

router = APIRouter(tags=["rules"])

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]


class RuleEnabledBody(BaseModel):
    enabled: bool


class BacktestBody(BaseModel):
    rule: rules_rpc.RuleDraft
    pool_id: str | None = Field(None, description="defaults to the rule's pool")
    since: datetime | None = None
    until: datetime | None = None


@router.get("/rules", response_model=rules_rpc.Rules,
            summary="Quality-control rules, optionally of one pool or project")
async def list_rules(actor: StaffActor, rpc: Rpc, p: PageQ, pool_id: str | None = None,
                     project_id: str | None = None, include_deleted: bool = False):
    return await rpc.call(rules_rpc.LIST_RULES, rules_rpc.ListRules(
        actor=actor, pool_id=pool_id, project_id=project_id, include_deleted=include_deleted,
        page=p))


@router.get("/rules/{rule_id}", response_model=rules_rpc.Rule, summary="One rule")
async def get_rule(actor: StaffActor, rpc: Rpc, rule_id: Id):
    return await rpc.call(rules_rpc.GET_RULE, rules_rpc.RuleRef(actor=actor, rule_id=rule_id))


@router.get("/rules/explain/{worker_id}", response_model=rules_rpc.WorkerExplanation,
            summary="Why rules acted on a worker: every firing with its facts")
async def explain_worker(actor: StaffActor, rpc: Rpc, worker_id: Id, p: PageQ,
                         pool_id: str | None = None, rule_id: str | None = None):
    return await rpc.call(rules_rpc.EXPLAIN_WORKER, rules_rpc.ExplainWorker(
        actor=actor, worker_id=worker_id, pool_id=pool_id, rule_id=rule_id, page=p))


@router.post("/rules/backtest", response_model=rules_rpc.BacktestResult,
             summary="Dry-run a draft rule over recorded events: whom it would have hit")
async def backtest(actor: StaffActor, rpc: Rpc, body: BacktestBody):
    return await rpc.call(rules_rpc.BACKTEST, rules_rpc.Backtest(
        actor=actor, **body.model_dump(exclude_unset=True)), timeout_s=60)


@router.get("/restrictions", response_model=rules_rpc.Restrictions,
            summary="Restrictions applied by rules (active ones by default)")
async def list_restrictions(actor: StaffActor, rpc: Rpc, p: PageQ, worker_id: str | None = None,
                            pool_id: str | None = None, active_only: bool = True):
    return await rpc.call(rules_rpc.LIST_RESTRICTIONS, rules_rpc.ListRestrictions(
        actor=actor, worker_id=worker_id, pool_id=pool_id, active_only=active_only, page=p))


@router.post("/admin/rules", response_model=rules_rpc.Rule, status_code=status.HTTP_201_CREATED,
             tags=["admin: rules"],
             summary="Create a rule (an incomplete rule is refused with the missing fields)")
async def create_rule(actor: AdminActor, rpc: Rpc, body: rules_rpc.RuleDraft):
    return await rpc.call(rules_rpc.CREATE_RULE, rules_rpc.CreateRule(actor=actor, rule=body))


@router.patch("/admin/rules/{rule_id}", response_model=rules_rpc.Rule, tags=["admin: rules"],
              summary="Enable or disable a rule")
async def update_rule(actor: AdminActor, rpc: Rpc, rule_id: Id, body: RuleEnabledBody):
    return await rpc.call(rules_rpc.UPDATE_RULE, rules_rpc.UpdateRule(
        actor=actor, rule_id=rule_id, enabled=body.enabled))


@router.delete("/admin/rules/{rule_id}", response_model=rules_rpc.Rule, tags=["admin: rules"],
               summary="Delete a rule (kept for the audit of its past firings)")
async def delete_rule(actor: AdminActor, rpc: Rpc, rule_id: Id):
    return await rpc.call(rules_rpc.DELETE_RULE, rules_rpc.RuleRef(actor=actor, rule_id=rule_id))

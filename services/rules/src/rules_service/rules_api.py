"""The rules slice: admins create, enable, disable and delete rules; staff read them.

Every field a rule needs is required: an incomplete draft is refused with the list of
what is missing (``rule_incomplete``), any other mistake with ``rule_invalid``.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.rpc import rules as rpc
from rules_service import domain
from rules_service.context import RulesContext
from servicekit.errors import Invalid, NotFound
from servicekit.router import Router

router = Router()


def checked_rule(draft: rpc.RuleDraft) -> dict[str, Any]:
    """A complete, valid rule (normalized), or the refusal listing what is wrong."""
    d = draft.model_dump()
    missing, problems = domain.validate_rule(d)
    if missing:
        raise Invalid("rule_incomplete",
                      "every field of a rule is required; missing: " + ", ".join(missing),
                      details=missing)
    if problems:
        raise Invalid("rule_invalid", "; ".join(problems), details=problems)
    return domain.normalize_rule(d)


@router.rpc(rpc.CREATE_RULE)
async def create_rule(req: rpc.CreateRule, ctx: RulesContext) -> rpc.Rule:
    """Create an enabled rule from a complete draft (admin)."""
    rule = checked_rule(req.rule)
    now = ctx.clock()
    name = req.rule.name or f"{rule['collector']['kind']} -> {rule['action']['type']}"
    row = dict(rule_id=str(uuid.uuid4()), name=name, enabled=True, deleted=False,
               created_by=req.actor.user_id, created_at=now, updated_at=now, **rule)
    async with ctx.statement() as uow:
        await uow.store.add_rule(row)
        uow.after_commit(ctx.rules.invalidate)
    return rpc.Rule(**row)


@router.rpc(rpc.LIST_RULES)
async def list_rules(req: rpc.ListRules, ctx: RulesContext) -> rpc.Rules:
    """Rules, oldest first, optionally of one pool or project (staff)."""
    async with ctx.read() as r:
        items, total = await r.store.list_rules(
            pool_id=req.pool_id, project_id=req.project_id,
            include_deleted=req.include_deleted, limit=req.page.limit, offset=req.page.offset)
    return rpc.Rules(items=items, total=total)


@router.rpc(rpc.GET_RULE)
async def get_rule(req: rpc.RuleRef, ctx: RulesContext) -> rpc.Rule:
    """One rule, deleted ones too (staff)."""
    async with ctx.read() as r:
        rule = await r.store.get_rule(req.rule_id)
    if rule is None:
        raise NotFound("rule_not_found", f"no rule {req.rule_id}")
    return rule


async def _change(ctx: RulesContext, rule_id: str, *, enabled: bool | None = None,
                  delete: bool = False) -> rpc.Rule:
    async with ctx.statement() as uow:
        rule = await uow.store.change_rule(rule_id, ctx.clock(), enabled=enabled,
                                           delete=delete)
        if rule is None:
            gone = await uow.store.get_rule(rule_id)
            raise NotFound("rule_not_found", f"rule {rule_id} was deleted" if gone
                           else f"no rule {rule_id}")
        uow.after_commit(ctx.rules.invalidate)
    return rule


@router.rpc(rpc.UPDATE_RULE)
async def update_rule(req: rpc.UpdateRule, ctx: RulesContext) -> rpc.Rule:
    """Enable or disable a rule that is not deleted (admin)."""
    return await _change(ctx, req.rule_id, enabled=req.enabled)


@router.rpc(rpc.DELETE_RULE)
async def delete_rule(req: rpc.RuleRef, ctx: RulesContext) -> rpc.Rule:
    """Delete a rule: it stops acting and leaves the lists; its firings stay (admin)."""
    return await _change(ctx, req.rule_id, delete=True)


@router.rpc(rpc.SET_RULE_PARAMS)
async def set_rule_params(req: rpc.SetRuleParams, ctx: RulesContext) -> rpc.Rule:
    """Replace a live rule's conditions (its thresholds), checked as a whole rule with its
    collector and action; ``dry_run`` answers the rule as it would be and stores nothing
    (admin; the configuration-change flow validates proposals with it)."""
    async with ctx.statement() as uow:
        rule = await uow.store.get_rule(req.rule_id)
        if rule is None or rule.deleted:
            raise NotFound("rule_not_found", f"rule {req.rule_id} was deleted" if rule
                           else f"no rule {req.rule_id}")
        draft = rpc.RuleDraft.model_validate({
            "name": rule.name, "scope": rule.scope, "pool_id": rule.pool_id,
            "project_id": rule.project_id, "collector": rule.collector,
            "action": rule.action,
            "conditions": [c.model_dump() for c in req.params.conditions]})
        conditions = checked_rule(draft)["conditions"]
        if req.dry_run:
            return rule.model_copy(update={"conditions": conditions})
        # a new version like any edit: explain keeps naming the version that fired
        changed = await uow.store.edit_rule(
            req.rule_id, name=rule.name, conditions=conditions, action=rule.action,
            evidence_public=None, by=req.actor.user_id, now=ctx.clock())
        if changed is None:
            raise NotFound("rule_not_found", f"rule {req.rule_id} was deleted")
        uow.after_commit(ctx.rules.invalidate)
    return changed

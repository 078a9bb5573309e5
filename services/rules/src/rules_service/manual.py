"""Manual control: staff restrict a worker or set a skill by hand, admins edit a rule in
place (each edit a new version), and a worker reads the causes of their restrictions.

A manual restriction is a restriction like a rule's (``rules.restriction.applied``, the
sweeper ends it when its time is up, ``lift_restriction`` ends it by hand) whose
``rule_id`` is ``manual``; an upheld appeal of a restriction (``review.appeal.decided``)
lifts it. The private reason is for staff: the worker's view carries the rule, its
version and, where the rule shows them, the counts and thresholds, never the reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.envelope import Envelope
from contracts.events import AppealDecided, RestrictionApplied, SkillRemoved, SkillSet
from contracts.rpc import rules as rpc
from rules_service.actions import restriction_end
from rules_service.context import RulesContext
from rules_service.rules_api import checked_rule
from rules_service.store import RulesStore
from rules_service.sweeper import lift
from servicekit.errors import Invalid, NotFound
from servicekit.router import Router
from servicekit.uow import UnitOfWork

router = Router()

MANUAL_POOL_KEY = "manual"  # manual restrictions have no collector state to reset
FIXED = ("scope", "pool_id", "project_id", "collector")  # what an edit may not change


# ------------------------------------------------------------------ rule versions


@router.rpc(rpc.EDIT_RULE)
async def edit_rule(req: rpc.EditRule, ctx: RulesContext) -> rpc.Rule:
    """Replace a rule's name, conditions and action with a complete draft: its next
    version. The collector's counts stay meaningful only for the same collector, so the
    collector, scope and pool or project must stay as they are (``rule_fixed_field``)."""
    rule = checked_rule(req.rule)
    async with ctx.uow() as uow:
        current = await uow.store.get_rule(req.rule_id)
        if current is None or current.deleted:
            raise NotFound("rule_not_found", f"no rule {req.rule_id}")
        changed = [k for k in FIXED if rule[k] != getattr(current, k)]
        if changed:
            raise Invalid("rule_fixed_field",
                          "an edit keeps the rule's " + ", ".join(changed)
                          + "; make a new rule to count something else", details=changed)
        edited = await uow.store.edit_rule(
            req.rule_id, name=req.rule.name or current.name, conditions=rule["conditions"],
            action=rule["action"], evidence_public=req.evidence_public,
            by=req.actor.user_id, now=ctx.clock())
        assert edited is not None  # the rule is live: read above in this transaction
        uow.after_commit(ctx.rules.invalidate)
    return edited


@router.rpc(rpc.RULE_VERSIONS)
async def rule_versions(req: rpc.RuleRef, ctx: RulesContext) -> rpc.RuleVersions:
    """Every version of a rule, newest first (staff)."""
    async with ctx.read() as r:
        items = await r.store.rule_versions(req.rule_id)
    if not items:
        raise NotFound("rule_not_found", f"no rule {req.rule_id}")
    return rpc.RuleVersions(items=items)


# ------------------------------------------------------------ manual restrictions


def _where(req: rpc.RestrictWorker) -> tuple[str | None, str | None]:
    """The pool or project a manual restriction covers, or the refusal."""
    need = {"pool": "pool_id", "project": "project_id"}.get(req.scope)
    if need and getattr(req, need) is None:
        raise Invalid("restriction_incomplete", f"a {req.scope} restriction needs {need}",
                      details=[need])
    if req.duration_unit != "permanent" and req.duration is None:
        raise Invalid("restriction_incomplete", "a temporary restriction needs a duration",
                      details=["duration"])
    return (req.pool_id if req.scope == "pool" else None,
            req.project_id if req.scope == "project" else None)


@router.rpc(rpc.RESTRICT_WORKER)
async def restrict_worker(req: rpc.RestrictWorker, ctx: RulesContext) -> rpc.Restriction:
    """Restrict a worker by hand: the tasks service refuses their takes (``restricted``)
    once ``rules.restriction.applied`` arrives; it ends by itself when its time is up."""
    pool_id, project_id = _where(req)
    now = ctx.clock()
    rid = str(uuid.uuid4())
    until = restriction_end({"duration_unit": req.duration_unit, "duration": req.duration},
                            now)
    row: dict[str, Any] = {
        "restriction_id": rid, "rule_id": rpc.MANUAL, "firing_id": rid,
        "worker_id": req.worker_id, "scope": req.scope, "pool_id": pool_id,
        "project_id": project_id, "pool_key": MANUAL_POOL_KEY,
        "private_comment": req.private_comment, "applied_at": now, "until": until,
        "lifted_at": None, "source": "manual", "applied_by": req.actor.user_id,
        "rule_version": None}
    async with ctx.uow() as uow:
        await uow.store.add_restriction(row)
        uow.record(RestrictionApplied(
            rule_id=rpc.MANUAL, firing_id=rid, worker_id=req.worker_id, restriction_id=rid,
            scope=req.scope, pool_id=pool_id, project_id=project_id, until=until,
            private_comment=req.private_comment))
    return rpc.Restriction(**{k: v for k, v in row.items() if k != "pool_key"})


@router.rpc(rpc.SET_WORKER_SKILL)
async def set_worker_skill(req: rpc.SetWorkerSkill, ctx: RulesContext) -> rpc.ManualSkill:
    """Set (``rules.skill.set``) or remove (``rules.skill.removed``) a worker's skill by
    hand; the tasks service keeps skills and applies either."""
    now, firing_id = ctx.clock(), str(uuid.uuid4())
    async with ctx.uow() as uow:
        if req.value is None:
            uow.record(SkillRemoved(rule_id=rpc.MANUAL, firing_id=firing_id,
                                    worker_id=req.worker_id, skill=req.skill))
        else:
            uow.record(SkillSet(rule_id=rpc.MANUAL, firing_id=firing_id,
                                worker_id=req.worker_id, skill=req.skill, value=req.value))
    return rpc.ManualSkill(worker_id=req.worker_id, skill=req.skill, value=req.value,
                           set_by=req.actor.user_id, set_at=now)


@router.consume("review.appeal.decided", name="appeal-decided")
async def on_appeal_decided(event: AppealDecided, env: Envelope, uow: UnitOfWork[RulesStore],
                            ctx: RulesContext) -> None:
    """An upheld appeal of a restriction lifts it (once: a lifted one stays as it is)."""
    if event.kind != "restriction" or event.outcome != "upheld":
        return
    found = await uow.store.restriction(event.subject_id, lock=True)
    if found is None or found[0].worker_id != event.worker_id or found[0].lifted_at:
        return
    await lift(uow, [found[1]], event.decided_at)


# ------------------------------------------------------------ the worker's view


def _evidence(facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a worker may see of a firing's facts: the counted values, the conditions
    (thresholds) and the history size; never event ids or other workers' data."""
    if not facts:
        return None
    return {"values": facts.get("values", {}), "conditions": facts.get("conditions", []),
            "history_size": facts.get("history_size")}


@router.rpc(rpc.MY_RESTRICTIONS)
async def my_restrictions(req: rpc.MyRestrictions, ctx: RulesContext
                          ) -> rpc.WorkerRestrictions:
    """The caller's restrictions, newest first, each with its cause: the rule (its name
    and the version that fired, and the counts and thresholds where the rule shows them)
    or a manager's hand; never the private reason."""
    async with ctx.read() as r:
        rows, total = await r.store.worker_restrictions(
            req.actor.user_id, limit=req.page.limit, offset=req.page.offset)
    items = []
    for m in rows:
        manual = m["source"] == "manual"
        cause = rpc.RestrictionCause(source="manual") if manual else rpc.RestrictionCause(
            source="rule", rule_id=m["rule_id"], rule_name=m["rule_name"],
            rule_version=m["rule_version"],
            evidence=_evidence(m["facts"]) if m["evidence_public"] is not False else None)
        items.append(rpc.WorkerRestriction(
            restriction_id=m["restriction_id"], scope=m["scope"], pool_id=m["pool_id"],
            project_id=m["project_id"], applied_at=m["applied_at"], until=m["until"],
            lifted_at=m["lifted_at"], cause=cause))
    return rpc.WorkerRestrictions(items=items, total=total)

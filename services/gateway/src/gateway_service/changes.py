"""Configuration changes ("safe mode"): the settings a change may touch and how a change
is carried out.

Support keeps the proposals; the settings belong to tasks (a pool's timeout and overlap,
a trust level's limits), rules (a rule's conditions) and the ledger (the worker share).
Only the gateway calls services, so it reads each setting's current value from its owner
when a change is proposed (kept as the change's ``before``), has the owner validate the
new value, and at confirmation:

1. reads the value again: when it is no longer ``before`` the change is recorded
   ``stale`` and refused (409 ``proposal_stale``), unless it already is the proposed
   value, which is what an earlier confirmation left behind when its answer was lost;
   then the change is recorded ``applied`` without writing again;
2. asks the owner to set it (the confirming admin is the owner's actor, so the owner's
   own history names them); a refusal is recorded ``failed`` with the owner's error and
   answered 409 ``change_failed``; a timeout or an unavailable owner leaves the change
   ``proposed`` (the owner may or may not have applied it) and answers 503/504, and
   confirming again is safe: step 1 tells the two cases apart;
3. records ``applied`` in support. If that record is lost, the change stays proposed
   with the new value in force, and the next confirmation records it (step 1).

Every setter is absolute (it sets a value, it does not add to one), so applying the same
change twice leaves the same state; the owners take no idempotency key for settings and
none is needed.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from contracts.rpc import Actor
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import rules as rules_rpc
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.errors import ApiError
from gateway_service.routes.worker_views import GATEWAY_ACTOR
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

SettingModel = (support_rpc.PoolTimeoutSetting | support_rpc.PoolOverlapSetting
                | support_rpc.TrustLimitsSetting | support_rpc.RuleParamsSetting
                | support_rpc.WorkerShareSetting)
_SETTING: TypeAdapter[SettingModel] = TypeAdapter(support_rpc.Setting)
_TARGET_FIELD = {"pool.assignment_timeout_s": "pool_id", "pool.overlap": "pool_id",
                 "trust_limits": "level", "rule.params": "rule_id", "worker_share": "pool_id"}
_POOL_FIELD = {"pool.assignment_timeout_s": "assignment_timeout_s", "pool.overlap": "overlap"}


def setting_of(change: support_rpc.Change, value: Any) -> SettingModel:
    """The typed setting of a stored change with ``value`` (its ``after``, or its
    ``before`` for a revert)."""
    return _SETTING.validate_python({"kind": change.kind,
                                     _TARGET_FIELD[change.kind]: change.target, "value": value})


def share_text(bps: int) -> str:
    """Basis points as the ledger's decimal share (7000 -> '0.7000')."""
    return f"{bps // 10_000}.{bps % 10_000:04d}"


async def current_value(rpc: RpcClient, setting: SettingModel) -> Any:
    """The setting's value now, from its owner, as JSON (the shape of the setting's value)."""
    a = GATEWAY_ACTOR
    if isinstance(setting, support_rpc.PoolTimeoutSetting | support_rpc.PoolOverlapSetting):
        pool = await rpc.call(tasks_rpc.GET_POOL, tasks_rpc.PoolGet(actor=a,
                                                                    pool_id=setting.pool_id))
        return getattr(pool, _POOL_FIELD[setting.kind])
    if isinstance(setting, support_rpc.TrustLimitsSetting):
        limits = await rpc.call(tasks_rpc.GET_TRUST_LIMITS, tasks_rpc.TrustLimitsGet(actor=a))
        level = next(lv for lv in limits.levels if lv.level == setting.level)
        return support_rpc.TrustLimitsValue.model_validate(
            level.model_dump(exclude={"level"})).model_dump(mode="json")
    if isinstance(setting, support_rpc.RuleParamsSetting):
        rule = await rpc.call(rules_rpc.GET_RULE, rules_rpc.RuleRef(actor=a,
                                                                    rule_id=setting.rule_id))
        if rule.deleted:
            raise ApiError(404, "rule_not_found", f"rule {rule.rule_id} was deleted")
        return rules_rpc.RuleParams.model_validate(
            {"conditions": rule.conditions}).model_dump(mode="json")
    share = await rpc.call(ledger_rpc.GET_SHARE, ledger_rpc.GetShare(actor=a,
                                                                     pool_id=setting.pool_id))
    return share.share_bps


async def validate(rpc: RpcClient, setting: SettingModel) -> None:
    """The owner's check of the new value beyond its type (refusals are its 4xx): a rule's
    conditions by the rules service's dry run; a share's pool must exist in tasks (as for
    a direct share change). Pools and trust limits: their contract types are the owner's."""
    if isinstance(setting, support_rpc.RuleParamsSetting):
        await rpc.call(rules_rpc.SET_RULE_PARAMS, rules_rpc.SetRuleParams(
            actor=GATEWAY_ACTOR, rule_id=setting.rule_id, params=setting.value, dry_run=True))
    elif isinstance(setting, support_rpc.WorkerShareSetting) and setting.pool_id is not None:
        await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=GATEWAY_ACTOR,
                                                                   pool_id=setting.pool_id))


async def apply(rpc: RpcClient, actor: Actor, setting: SettingModel) -> None:
    """Have the owner set the value (as ``actor``, the confirming admin)."""
    if isinstance(setting, support_rpc.PoolTimeoutSetting | support_rpc.PoolOverlapSetting):
        await rpc.call(tasks_rpc.UPDATE_POOL, tasks_rpc.PoolUpdate(
            actor=actor, pool_id=setting.pool_id, **{_POOL_FIELD[setting.kind]: setting.value}))
    elif isinstance(setting, support_rpc.TrustLimitsSetting):
        await rpc.call(tasks_rpc.SET_TRUST_LIMITS, tasks_rpc.TrustLimitsSet(
            actor=actor, limits=tasks_rpc.TrustLevelLimits(level=setting.level,
                                                           **setting.value.model_dump())))
    elif isinstance(setting, support_rpc.RuleParamsSetting):
        await rpc.call(rules_rpc.SET_RULE_PARAMS, rules_rpc.SetRuleParams(
            actor=actor, rule_id=setting.rule_id, params=setting.value))
    else:
        await rpc.call(ledger_rpc.SET_SHARE, ledger_rpc.SetShare(
            actor=actor, pool_id=setting.pool_id, share=share_text(setting.value)))


async def _decide(rpc: RpcClient, actor: Actor, change: support_rpc.Change,
                  outcome: support_rpc.ChangeOutcome, **fields: Any) -> support_rpc.Change:
    return await rpc.call(support_rpc.DECIDE_CHANGE, support_rpc.DecideChange(
        actor=actor, change_id=change.change_id, outcome=outcome, **fields))


def _owner_refusal(exc: RpcCallError | ApiError) -> dict[str, Any] | None:
    """The owner's refusal (a 4xx) as recorded on a failed change; None for a timeout or
    an unavailable owner, after which the change must stay proposed."""
    error = exc.error if isinstance(exc, RpcCallError) else exc.body()
    if error.status >= 500:
        return None
    return {"code": error.code, "message": error.message, "details": error.details}


async def carry_out(rpc: RpcClient, actor: Actor, change: support_rpc.Change,
                    reason: str) -> tuple[support_rpc.Change, ApiError | None]:
    """Apply a proposed change through its owner (steps 1-3 above). Returns the change as
    recorded and, when it was not applied, the refusal to answer with (after auditing)."""
    setting = setting_of(change, change.after)
    try:
        current = await current_value(rpc, setting)
        if current != change.before and current != change.after:
            stale = await _decide(rpc, actor, change, "stale", current=current, reason=reason)
            return stale, ApiError(409, "proposal_stale",
                                   "the setting changed since the proposal: propose again",
                                   details={"before": change.before, "current": current})
        if current != change.after:
            await apply(rpc, actor, setting)
    except (RpcCallError, ApiError) as exc:
        error = _owner_refusal(exc)
        if error is None:
            raise  # the owner may have applied it: the change stays proposed
        failed = await _decide(rpc, actor, change, "failed", error=error, reason=reason)
        return failed, ApiError(409, "change_failed",
                                f"the owner refused: {error['code']}: {error['message']}",
                                details={"error": error})
    return await _decide(rpc, actor, change, "applied", reason=reason), None

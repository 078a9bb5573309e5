"""Rules service RPCs: quality-control rules, their firings (explain) and backtests.

A rule = a collector (what is counted, optionally over the last ``history_size``
values) + conditions (all must hold) + one action. Every field a rule needs is
required; the draft models below leave them optional on purpose so that the
service can refuse an incomplete rule with the full list of what is missing
(``rule_incomplete``, 422, ``details`` = list of missing field paths) instead of
a bare schema error. Admins manage rules; managers read, explain and backtest;
workers get nothing (private comments never reach workers).

Bonus amounts and currencies are the ledger's (``contracts.money``), so a rule whose
bonus the ledger could not book is refused where it is created. Identifiers are at most
64 characters and no string carries a NUL character (the database stores neither).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.money import Currency, PositiveAmountMinor
from contracts.rpc import ADMIN, STAFF, WORKER, Page, RpcRequest, rpc


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


Id = Annotated[str, Field(max_length=64), AfterValidator(_no_nul)]
Name = Annotated[str, Field(max_length=200), AfterValidator(_no_nul)]
Skill = Annotated[str, Field(max_length=100), AfterValidator(_no_nul)]
Comment = Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)]
# a finite number: NaN or infinity would be stored as null and break every evaluation
Threshold = Annotated[float, Field(allow_inf_nan=False)]

RuleScope = Literal["pool", "project", "platform"]
CollectorKind = Literal[
    "income", "captcha", "golden_set", "majority_vote", "fast_answers", "submitted_answers",
    "skipped_in_row", "acceptance_rate", "assessments", "access_revoked",
]
Operator = Literal["==", "!=", ">", ">=", "<", "<="]
ActionType = Literal["restriction", "set_skill", "set_skill_from_field", "accept_all",
                     "reject_all", "change_overlap", "bonus"]


class _Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectorDraft(_Draft):
    """What is counted. Condition fields per kind:

    * income: income_sum_for_24h (minor units, per pool, sliding 24 h)
    * captcha: stored_results_count, success_rate, fail_rate
    * golden_set: total_answers_count, correct_answers_rate, incorrect_answers_rate,
      golden_set_answers_count, golden_set_correct_answers_rate,
      golden_set_incorrect_answers_rate
    * majority_vote (needs answer_threshold): total_answers_count, correct_answers_rate,
      incorrect_answers_rate
    * fast_answers (needs fast_submit_threshold_seconds): total_submitted_count,
      fast_submitted_count
    * submitted_answers: submitted_count_24h
    * skipped_in_row: skipped_in_row_count
    * acceptance_rate: total_reviewed_count, accepted_rate, rejected_rate
    * assessments: pending_submitted_count, accepted_submitted_count,
      rejected_submitted_count, assessment_event ("accept" | "accept_after_reject" | "reject")
    * access_revoked: access_revoked_reason ("restriction" | "skill_change")
    """

    kind: CollectorKind | None = None
    history_size: int | None = Field(None, ge=1, le=10_000)
    answer_threshold: int | None = Field(None, ge=1, le=1000)
    fast_submit_threshold_seconds: int | None = Field(None, ge=1, le=86_400)


class ConditionDraft(_Draft):
    field: Id | None = None
    operator: Operator | None = None
    value: Threshold | Id | None = None


class ActionDraft(_Draft):
    """One action; which parameters are required depends on ``type``:

    * restriction: scope (pool | project | all), duration_unit (minutes | hours | days |
      permanent), duration (unless permanent), private_comment
    * set_skill: skill, value; set_skill_from_field: skill, from_field
    * accept_all: nothing; reject_all: public_comment
    * change_overlap: add (the pool is re-opened)
    * bonus: amount_minor, currency
    """

    type: ActionType | None = None
    scope: Literal["pool", "project", "all"] | None = None
    duration: int | None = Field(None, ge=1, le=100_000)
    duration_unit: Literal["minutes", "hours", "days", "permanent"] | None = None
    private_comment: Comment | None = None
    skill: Skill | None = None
    value: int | None = Field(None, ge=0, le=100)
    from_field: Id | None = None
    public_comment: Comment | None = None
    add: int | None = Field(None, ge=1, le=100)
    amount_minor: PositiveAmountMinor | None = None
    currency: Currency | None = None


class RuleDraft(_Draft):
    name: Name | None = None
    scope: RuleScope | None = None
    pool_id: Id | None = None
    project_id: Id | None = None
    collector: CollectorDraft | None = None
    conditions: list[ConditionDraft] | None = Field(None, max_length=100)
    action: ActionDraft | None = None


class Rule(BaseModel):
    rule_id: str
    name: str
    scope: RuleScope
    pool_id: str | None = None
    project_id: str | None = None
    collector: dict[str, Any]
    conditions: list[dict[str, Any]]
    action: dict[str, Any]
    enabled: bool
    deleted: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = Field(1, description="the current version; each edit adds one")
    evidence_public: bool = Field(
        True, description="workers restricted by this rule see its counts and thresholds")


class CreateRule(RpcRequest):
    rule: RuleDraft


class ListRules(RpcRequest):
    pool_id: Id | None = None
    project_id: Id | None = None
    include_deleted: bool = False
    page: Page = Page()


class Rules(BaseModel):
    items: list[Rule]
    total: int


class RuleRef(RpcRequest):
    rule_id: Id


class UpdateRule(RpcRequest):
    rule_id: Id
    enabled: bool


class ExplainWorker(RpcRequest):
    worker_id: Id
    pool_id: Id | None = None
    rule_id: Id | None = None
    page: Page = Page()


class Firing(BaseModel):
    """One time a rule fired on a worker, with the facts that caused it."""

    firing_id: str
    rule_id: str
    worker_id: str
    pool_id: str | None
    project_id: str | None
    fired_at: datetime
    action: dict[str, Any]
    outcome: str
    rule_version: int | None = Field(None, description="the version of the rule that fired")
    facts: dict[str, Any] = Field(
        description="collector values, conditions (thresholds), history size and the ids "
                    "of the events counted")


class Restriction(BaseModel):
    restriction_id: str
    rule_id: str
    firing_id: str
    worker_id: str
    scope: Literal["pool", "project", "all"]
    pool_id: str | None
    project_id: str | None
    private_comment: str
    applied_at: datetime
    until: datetime | None
    lifted_at: datetime | None
    source: Literal["rule", "manual"] = "rule"
    applied_by: str | None = Field(None, description="who restricted by hand (manual)")
    rule_version: int | None = None


class WorkerExplanation(BaseModel):
    worker_id: str
    firings: list[Firing]
    total: int
    restrictions: list[Restriction]


class Backtest(RpcRequest):
    """Run a draft rule over a pool's (or project's) recorded events; acts on nothing."""

    rule: RuleDraft
    pool_id: Id | None = Field(None, description="defaults to the rule's pool")
    since: datetime | None = None
    until: datetime | None = None


class BacktestHit(BaseModel):
    worker_id: str
    pool_id: str | None
    at: datetime
    values: dict[str, Any]
    event_ids: list[str]


class BacktestResult(BaseModel):
    events_scanned: int
    truncated: bool
    hits: list[BacktestHit]
    workers: list[str]


class ListRestrictions(RpcRequest):
    worker_id: Id | None = None
    pool_id: Id | None = None
    active_only: bool = True
    page: Page = Page()


class Restrictions(BaseModel):
    items: list[Restriction]
    total: int


class LiftRestriction(RpcRequest):
    """Lift a restriction before its time (admin): the worker may take again and the rule
    counts that worker afresh, as when a restriction runs out."""

    restriction_id: str = Field(min_length=1, max_length=64)


CREATE_RULE = rpc("rules", "create_rule", CreateRule, Rule,
                  "Create a quality-control rule (admin); incomplete rules are refused",
                  roles=ADMIN)
LIST_RULES = rpc("rules", "list_rules", ListRules, Rules, "List rules (admin, manager)",
                 roles=STAFF)
GET_RULE = rpc("rules", "get_rule", RuleRef, Rule, "One rule (admin, manager)", roles=STAFF)
UPDATE_RULE = rpc("rules", "update_rule", UpdateRule, Rule, "Enable or disable a rule (admin)",
                  roles=ADMIN)
DELETE_RULE = rpc("rules", "delete_rule", RuleRef, Rule, "Soft-delete a rule (admin)",
                  roles=ADMIN)
EXPLAIN_WORKER = rpc("rules", "explain_worker", ExplainWorker, WorkerExplanation,
                     "Every firing on a worker with the facts that caused it (admin, manager)",
                     roles=STAFF)
BACKTEST = rpc("rules", "backtest", Backtest, BacktestResult,
               "Whom a draft rule would have hit on recorded events (admin, manager)",
               roles=STAFF)
LIST_RESTRICTIONS = rpc("rules", "list_restrictions", ListRestrictions, Restrictions,
                        "Restrictions applied by rules (admin, manager)", roles=STAFF)
LIFT_RESTRICTION = rpc("rules", "lift_restriction", LiftRestriction, Restriction,
                       "Lift a restriction now (admin); emits rules.restriction.lifted",
                       roles=ADMIN)


# ------------------------------------------------------------ thresholds (changes)


class RuleParams(_Draft):
    """The tunable part of a rule: its conditions (each a field, an operator and the
    threshold it is compared with). The collector and the action stay as they are."""

    conditions: list[ConditionDraft] = Field(min_length=1, max_length=100)


class SetRuleParams(RpcRequest):
    rule_id: Id
    params: RuleParams
    dry_run: bool = Field(False, description="validate against the rule and change nothing")


SET_RULE_PARAMS = rpc("rules", "set_rule_params", SetRuleParams, Rule,
                      "Replace a rule's conditions (thresholds) after validating them as a "
                      "whole rule; dry_run only validates (admin)", roles=ADMIN)

# ------------------------------------------------------- manual control and versions

MANUAL = "manual"  # the rule_id of restrictions and skills set by hand


class EditRule(RpcRequest):
    """Edit a rule in place: a complete draft replaces its name, conditions and action
    (a new version; the old ones stay for the firings they explain). The collector, the
    scope and the pool or project stay: a rule that counts something else is a new rule."""

    rule_id: Id
    rule: RuleDraft
    evidence_public: bool | None = Field(
        None, description="whether restricted workers see the counts and thresholds")


class RuleVersion(BaseModel):
    rule_id: str
    version: int
    name: str
    collector: dict[str, Any]
    conditions: list[dict[str, Any]]
    action: dict[str, Any]
    evidence_public: bool
    edited_by: str
    edited_at: datetime


class RuleVersions(BaseModel):
    items: list[RuleVersion]


DurationUnit = Literal["minutes", "hours", "days", "permanent"]


class RestrictWorker(RpcRequest):
    """Block (all), restrict in a project or suspend in a pool by hand, for a time or until
    lifted; the private reason is for staff only."""

    worker_id: Id
    scope: Literal["pool", "project", "all"]
    pool_id: Id | None = None
    project_id: Id | None = None
    duration: int | None = Field(None, ge=1, le=100_000)
    duration_unit: DurationUnit
    private_comment: Annotated[str, Field(min_length=1, max_length=2000),
                               AfterValidator(_no_nul)]


class SetWorkerSkill(RpcRequest):
    """Set a worker's skill by hand, or remove it (``value`` null)."""

    worker_id: Id
    skill: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]
    value: int | None = Field(None, ge=0, le=100)


class ManualSkill(BaseModel):
    worker_id: str
    skill: str
    value: int | None = Field(description="null: removed")
    set_by: str
    set_at: datetime


class MyRestrictions(RpcRequest):
    """The caller's own restrictions, newest first (a worker)."""

    page: Page = Page()


class RestrictionCause(BaseModel):
    """Why a worker was restricted, as the worker may see it: never the private reason, and
    (as review hides reviewers) never which staff member; ``manual`` means a manager."""

    source: Literal["rule", "manual"]
    rule_id: str | None = None
    rule_name: str | None = None
    rule_version: int | None = None
    evidence: dict[str, Any] | None = Field(
        None, description="the counts and thresholds that made the rule fire, where the "
                          "rule shows them (values, conditions, history_size)")


class WorkerRestriction(BaseModel):
    restriction_id: str
    scope: Literal["pool", "project", "all"]
    pool_id: str | None
    project_id: str | None
    applied_at: datetime
    until: datetime | None
    lifted_at: datetime | None
    cause: RestrictionCause


class WorkerRestrictions(BaseModel):
    items: list[WorkerRestriction]
    total: int


EDIT_RULE = rpc("rules", "edit_rule", EditRule, Rule,
                "Edit a rule's name, conditions and action: a new version (admin)", roles=ADMIN)
RULE_VERSIONS = rpc("rules", "rule_versions", RuleRef, RuleVersions,
                    "Every version of a rule, newest first (admin, manager)", roles=STAFF)
RESTRICT_WORKER = rpc("rules", "restrict_worker", RestrictWorker, Restriction,
                      "Restrict a worker by hand (admin, manager); emits "
                      "rules.restriction.applied", roles=STAFF)
SET_WORKER_SKILL = rpc("rules", "set_worker_skill", SetWorkerSkill, ManualSkill,
                       "Set or remove a worker's skill by hand (admin, manager)", roles=STAFF)
MY_RESTRICTIONS = rpc("rules", "my_restrictions", MyRestrictions, WorkerRestrictions,
                      "The caller's restrictions with their causes, no private reason "
                      "(worker)", roles=WORKER)

"""Tasks service RPCs: projects, pools, task upload, the assignment lifecycle, worker limits.

HIDDEN-SHARE RULE: a pool's money (``price_minor``, ``currency``) travels only in
:class:`AdminPool`, the reply of the admin-only specs (``create_pool``, ``update_pool``,
``open_pool``, ``close_pool``, ``archive_pool``, ``admin_get_pool``, ``admin_list_pools``).
:class:`Pool`, the staff view (``get_pool``, ``list_pools``), has no such fields, and is
not a base of ``AdminPool``: the RPC server refuses to send an ``AdminPool`` under a spec
whose response is ``Pool``. Workers see pools only as :class:`AvailablePool`.

Every value is checked here, where it enters: ids and texts are length-limited and refuse
NUL characters (PostgreSQL cannot store them in text), durations are bounded (they are
stored as 32-bit integers), amounts and currencies are the ledger's (``contracts.money``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictInt

from contracts.money import AmountMinor, Currency
from contracts.rpc import ADMIN, ROLES, STAFF, WORKER, Page, RpcRequest, rpc

FieldType = Literal["string", "integer", "number", "boolean", "url", "json", "file"]
PoolStatus = Literal["draft", "open", "closed", "archived"]
AssignmentStatus = Literal["ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED"]
TrustLevel = Literal["new", "verified", "trusted"]
ReviewMode = Literal["manual", "auto"]
CaptchaFrequency = Literal["none", "low", "high"]

MAX_ASSIGNMENT_TIMEOUT_S = 7 * 24 * 3600
MAX_AUTO_ACCEPT_AFTER_S = 365 * 24 * 3600  # far below 2^31, the column's limit
MAX_ANSWERS_CHARS = 100_000  # the answers of one submission, as JSON text
MAX_UPLOAD_CHARS = 64 * 1024 * 1024


# ------------------------------------------------------------------------ values


def _refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _refuse_nul_inside(value: Any) -> Any:
    """NUL characters refused in every string of a JSON value (keys too)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            _refuse_nul(v)
        elif isinstance(v, dict):
            stack += list(v.keys()) + list(v.values())
        elif isinstance(v, list):
            stack += v
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


NoNul = AfterValidator(_refuse_nul)
Id = Annotated[str, Field(min_length=1, max_length=64), NoNul]
Name = Annotated[str, Field(min_length=1, max_length=200), NoNul]
Text = Annotated[str, Field(max_length=10_000), NoNul]
# ISO code in any case ("eur" is EUR); one of the currencies the ledger books
CurrencyCode = Annotated[Currency, BeforeValidator(_upper)]
AssignmentTimeoutS = Annotated[int, Field(ge=1, le=MAX_ASSIGNMENT_TIMEOUT_S)]
AutoAcceptAfterS = Annotated[int, Field(ge=0, le=MAX_AUTO_ACCEPT_AFTER_S)]
Overlap = Annotated[int, Field(ge=1, le=1000)]
Priority = Annotated[int, Field(ge=-1000, le=1000)]
SkillValue = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
# the requester's declared time per task, until enough accepted work measures it (fair pay)
ExpectedSecondsPerTask = Annotated[StrictInt, Field(ge=1, le=MAX_ASSIGNMENT_TIMEOUT_S)]


def _bounded_answers(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, ensure_ascii=False)) > MAX_ANSWERS_CHARS:
        raise ValueError(f"the answers are longer than {MAX_ANSWERS_CHARS} characters")
    return _refuse_nul_inside(value)  # type: ignore[no-any-return]


Answers = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_bounded_answers)]
JsonValues = Annotated[list[Any], AfterValidator(_refuse_nul_inside)]


# ------------------------------------------------------------------------ projects


class FieldSpec(BaseModel):
    """One field of a project's input or output spec."""

    name: Annotated[str, NoNul] = Field(min_length=1, max_length=64)
    type: FieldType = "string"
    required: bool = True
    allowed_values: JsonValues | None = Field(None, max_length=1000)
    min_length: int | None = Field(None, ge=0, le=1_000_000)
    max_length: int | None = Field(None, ge=0, le=1_000_000)
    min_value: float | None = Field(None, allow_inf_nan=False)
    max_value: float | None = Field(None, allow_inf_nan=False)
    pattern: Annotated[str, NoNul] | None = Field(
        None, max_length=500,
        description="regex the whole value matches (RE2 syntax: linear-time, no "
                    "backreferences or lookaround)")


class ProjectCreate(RpcRequest):
    name: Name
    instructions: Annotated[str, NoNul] = Field("", max_length=100_000, description="Markdown")
    input_spec: list[FieldSpec] = Field(min_length=1, max_length=200)
    output_spec: list[FieldSpec] = Field(min_length=1, max_length=200)
    sandbox: bool = Field(False, description="a sandbox project: staff try its pools as "
                          "workers; no money moves, nothing is counted; fixed at creation")


class ProjectUpdate(RpcRequest):
    project_id: Id
    name: Name | None = None
    instructions: Annotated[str, NoNul] | None = Field(None, max_length=100_000)
    input_spec: list[FieldSpec] | None = Field(None, min_length=1, max_length=200)
    output_spec: list[FieldSpec] | None = Field(None, min_length=1, max_length=200)


class ProjectGet(RpcRequest):
    project_id: Id


class ProjectList(RpcRequest):
    page: Page = Page()


class Project(BaseModel):
    project_id: str
    name: str
    instructions: str
    input_spec: list[FieldSpec]
    output_spec: list[FieldSpec]
    created_at: datetime
    updated_at: datetime
    sandbox: bool = False


class Projects(BaseModel):
    items: list[Project]
    total: int


# --------------------------------------------------------------------------- pools


class SkillFilter(BaseModel):
    """``gte``: the worker's skill is at least ``value``; ``absent``: the worker has no such
    skill."""

    skill: Annotated[str, NoNul] = Field(min_length=1, max_length=64)
    op: Literal["gte", "absent"] = "gte"
    value: SkillValue | None = None


class PoolCreate(RpcRequest):
    project_id: Id
    name: Name
    price_minor: AmountMinor
    currency: CurrencyCode = "RUB"
    overlap: Overlap = 1
    assignment_timeout_s: AssignmentTimeoutS = 600
    auto_accept_after_s: AutoAcceptAfterS | None = None
    review_mode: ReviewMode = "manual"
    captcha_frequency: CaptchaFrequency = "none"
    skill_filters: list[SkillFilter] = Field([], max_length=50)
    priority: Priority = 0
    expected_seconds_per_task: ExpectedSecondsPerTask | None = Field(
        None, description="the requester's expected seconds per task: the fair-pay estimate "
                          "until enough accepted work measures it")


class PoolUpdate(RpcRequest):
    """Change a pool's settings; omitted fields stay. The price and currency only while
    the pool is a draft: once open, workers took its tasks at that price. ``overlap`` is
    the default for tasks uploaded afterwards (a task keeps the overlap it got)."""

    pool_id: Id
    name: Name | None = None
    price_minor: AmountMinor | None = None
    currency: CurrencyCode | None = None
    overlap: Overlap | None = None
    assignment_timeout_s: AssignmentTimeoutS | None = None
    auto_accept_after_s: AutoAcceptAfterS | None = None
    review_mode: ReviewMode | None = None
    captcha_frequency: CaptchaFrequency | None = None
    skill_filters: list[SkillFilter] | None = Field(None, max_length=50)
    priority: Priority | None = None
    expected_seconds_per_task: ExpectedSecondsPerTask | None = Field(
        None, description="null clears it")


class PoolGet(RpcRequest):
    pool_id: Id


class PoolList(RpcRequest):
    project_id: Id | None = None
    status: PoolStatus | None = None
    page: Page = Page()


class PoolTransition(RpcRequest):
    pool_id: Id


class _PoolSettings(BaseModel):
    pool_id: str
    project_id: str
    name: str
    overlap: int
    assignment_timeout_s: int
    auto_accept_after_s: int | None
    review_mode: ReviewMode
    captcha_frequency: CaptchaFrequency
    skill_filters: list[SkillFilter]
    priority: int
    expected_seconds_per_task: int | None = None
    status: PoolStatus
    created_at: datetime
    updated_at: datetime
    sandbox: bool = Field(False, description="its project's sandbox flag")


class Pool(_PoolSettings):
    """A pool as staff see it: everything but its price (``get_pool``, ``list_pools``)."""


class AdminPool(_PoolSettings):
    """A pool with its price, for admins only (a sibling of :class:`Pool`, not a subclass,
    so that it can never be sent where a ``Pool`` is the reply)."""

    price_minor: AmountMinor
    currency: Currency


class Pools(BaseModel):
    items: list[Pool]
    total: int


class AdminPools(BaseModel):
    items: list[AdminPool]
    total: int


# --------------------------------------------------------------------------- tasks


class TasksUpload(RpcRequest):
    """Rows as JSON (a list of objects, or a JSON text of one) or TSV text (header = field names).

    Input fields may be written ``INPUT:name`` or ``name``; control (golden) answers as
    ``GOLDEN:name``. A JSON row may also be ``{"input_values": {...}, "known_solutions": {...}}``.
    """

    pool_id: Id
    format: Literal["json", "tsv"] = "json"
    content: Annotated[str, Field(max_length=MAX_UPLOAD_CHARS), NoNul] | JsonValues
    all_or_nothing: bool = False


class RowError(BaseModel):
    line: int
    error: str


class UploadResult(BaseModel):
    created: int
    control_tasks: int
    task_ids: list[str]
    errors: list[RowError]


class TaskList(RpcRequest):
    pool_id: Id
    page: Page = Page()


class TaskItem(BaseModel):
    task_id: str
    pool_id: str
    input: dict[str, Any]
    is_control: bool
    control_answers: dict[str, Any] | None = Field(None, description="admins only")
    hint: str | None = Field(None, description="shown after a training answer; admins only")
    overlap: int
    live_assignments: int
    created_at: datetime


class Tasks(BaseModel):
    items: list[TaskItem]
    total: int


# --------------------------------------------------------------------- assignments


class Take(RpcRequest):
    pool_id: Id | None = Field(None, description="None = any open pool the worker may use")


class AssignmentRef(RpcRequest):
    assignment_id: Id


class Submit(RpcRequest):
    assignment_id: Id
    answers: Answers
    comment: Text | None = None
    proof_url: Annotated[str, NoNul] | None = Field(None, max_length=2000)
    proof_text: Text | None = None


class Report(RpcRequest):
    assignment_id: Id
    reason: Annotated[str, NoNul] = Field(min_length=1, max_length=64)
    text: Text = ""


class Assignment(BaseModel):
    """An assignment as its worker sees it (never a price)."""

    assignment_id: str
    task_id: str
    pool_id: str
    project_id: str
    worker_id: str
    status: AssignmentStatus
    input: dict[str, Any]
    answers: dict[str, Any] | None = None
    comment: str | None = None
    proof: str | None = None
    review_comment: str | None = None
    taken_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    sandbox: bool = Field(False, description="taken by staff trying a sandbox pool")


class TakeResult(Assignment):
    pool_name: str
    instructions: str
    output_spec: list[FieldSpec]


class MyAssignments(RpcRequest):
    status: AssignmentStatus | None = None
    pool_id: Id | None = None
    page: Page = Page()


class Assignments(BaseModel):
    items: list[Assignment]
    total: int


class ReportResult(BaseModel):
    reported: bool


class CaptchaAnswer(RpcRequest):
    challenge_id: Id
    answer: Annotated[str, NoNul] = Field(max_length=64)


class CaptchaResult(BaseModel):
    correct: bool


class AvailablePools(RpcRequest):
    page: Page = Page()


class AvailablePool(BaseModel):
    """An open pool as a worker sees it: never its price."""

    pool_id: str
    project_id: str
    name: str
    instructions: str
    priority: int
    available_tasks: int


class AvailablePoolList(BaseModel):
    items: list[AvailablePool]


# ---------------------------------------------------------------- results, stats


class ExportResults(RpcRequest):
    """One page of a pool's results file; ask again with ``next_cursor`` until it is null.

    A page stays under ``max_bytes`` of text (one bus message), so a file of any size
    travels in parts; the gateway streams them as one download.
    """

    pool_id: Id
    format: Literal["csv", "tsv", "json"] = "csv"
    status: AssignmentStatus | None = None
    cursor: Annotated[str, NoNul] | None = Field(None, max_length=200)
    max_bytes: int = Field(512 * 1024, ge=1024, le=768 * 1024)


class ExportedResults(BaseModel):
    content_type: str
    filename: str
    rows: int = Field(description="rows in this page")
    content: str = Field(description="CSV/TSV: lines (the header on the first page only); "
                                     "JSON: an array of this page's rows")
    total_rows: int | None = Field(None, description="rows in the whole file (first page)")
    next_cursor: str | None = None


class PoolStatsRequest(RpcRequest):
    pool_id: Id


class PoolStats(BaseModel):
    pool_id: str
    status: PoolStatus
    tasks_total: int
    control_tasks: int
    tasks_open: int = Field(description="tasks with a free overlap slot")
    tasks_completed: int = Field(description="tasks with as many accepted answers as overlap")
    assignments: dict[str, int]


# ----------------------------------------------------------------- trust, workers


class TrustLevelLimits(BaseModel):
    level: TrustLevel
    max_active: int = Field(ge=0, le=10_000)
    min_pause_s: float = Field(ge=0, le=86_400, allow_inf_nan=False)
    assignment_timeout_s: AssignmentTimeoutS | None = Field(
        None, description="used when shorter than the pool's")


class TrustLimitsGet(RpcRequest):
    pass


class TrustLimitsSet(RpcRequest):
    limits: TrustLevelLimits


class TrustLimits(BaseModel):
    levels: list[TrustLevelLimits]


class WorkerProfileGet(RpcRequest):
    worker_id: Id


class SetTrustLevel(RpcRequest):
    worker_id: Id
    trust_level: TrustLevel


class Restriction(BaseModel):
    restriction_id: str
    scope: Literal["pool", "project", "all"]
    pool_id: str | None
    project_id: str | None
    until: datetime | None


class WorkerProfile(BaseModel):
    worker_id: str
    trust_level: TrustLevel
    skills: dict[str, int]
    restrictions: list[Restriction] = Field(description="in force now")
    active_assignments: int
    last_take_at: datetime | None
    created_at: datetime


# ------------------------------------------------------------------------- specs

CREATE_PROJECT = rpc("tasks", "create_project", ProjectCreate, Project, "Create a project (admin)",
                     roles=ADMIN)
GET_PROJECT = rpc("tasks", "get_project", ProjectGet, Project, "One project (admin, manager)",
                  roles=STAFF)
LIST_PROJECTS = rpc("tasks", "list_projects", ProjectList, Projects, "Projects (admin, manager)",
                    roles=STAFF)
UPDATE_PROJECT = rpc("tasks", "update_project", ProjectUpdate, Project, "Change a project (admin)",
                     roles=ADMIN)

CREATE_POOL = rpc("tasks", "create_pool", PoolCreate, AdminPool,
                  "Create a draft pool with its price (admin)", roles=ADMIN)
UPDATE_POOL = rpc("tasks", "update_pool", PoolUpdate, AdminPool,
                  "Change a pool's settings; price and currency only in draft (admin)",
                  roles=ADMIN)
GET_POOL = rpc("tasks", "get_pool", PoolGet, Pool, "One pool without its price (admin, manager)",
               roles=STAFF)
LIST_POOLS = rpc("tasks", "list_pools", PoolList, Pools,
                 "Pools without their prices (admin, manager)", roles=STAFF)
ADMIN_GET_POOL = rpc("tasks", "admin_get_pool", PoolGet, AdminPool,
                     "One pool with its price (admin)", roles=ADMIN)
ADMIN_LIST_POOLS = rpc("tasks", "admin_list_pools", PoolList, AdminPools,
                       "Pools with their prices (admin)", roles=ADMIN)
OPEN_POOL = rpc("tasks", "open_pool", PoolTransition, AdminPool,
                "draft/closed -> open, the price frozen (admin)", roles=ADMIN)
CLOSE_POOL = rpc("tasks", "close_pool", PoolTransition, AdminPool, "open -> closed (admin)",
                 roles=ADMIN)
ARCHIVE_POOL = rpc("tasks", "archive_pool", PoolTransition, AdminPool,
                   "closed/draft -> archived (admin)", roles=ADMIN)

UPLOAD_TASKS = rpc("tasks", "upload_tasks", TasksUpload, UploadResult,
                   "Bulk upload tasks as JSON or TSV, checked against the input spec (admin)",
                   roles=ADMIN)
LIST_TASKS = rpc("tasks", "list_tasks", TaskList, Tasks,
                 "Tasks of a pool; control answers for admins only (admin, manager)",
                 roles=STAFF)

TAKE = rpc("tasks", "take", Take, TakeResult,
           "Take a task (worker; staff only from a named sandbox pool); errors: "
           "no_tasks_available 404, take_limit 429, captcha_required 428, restricted 403",
           roles=ROLES)
SUBMIT = rpc("tasks", "submit", Submit, Assignment,
             "Submit answers (worker, or staff for a sandbox assignment); invalid_answers 422 "
             "with an error per field, assignment_expired 409 (the assignment expired on the "
             "way)", roles=ROLES)
SKIP = rpc("tasks", "skip", AssignmentRef, Assignment,
           "Give an active assignment back (worker, or staff for a sandbox assignment)",
           roles=ROLES)
REPORT = rpc("tasks", "report", Report, ReportResult, "Report a problem with a task (worker)",
             roles=WORKER)
CAPTCHA_ANSWER = rpc("tasks", "captcha_answer", CaptchaAnswer, CaptchaResult,
                     "Answer the captcha a take asked for (worker)", roles=WORKER)
MY_ASSIGNMENTS = rpc("tasks", "my_assignments", MyAssignments, Assignments,
                     "The caller's own assignments (staff have sandbox ones only)",
                     roles=ROLES)
AVAILABLE_POOLS = rpc("tasks", "available_pools", AvailablePools, AvailablePoolList,
                      "Open pools the calling worker may take from, with free task counts",
                      roles=WORKER)

EXPORT_RESULTS = rpc("tasks", "export_results", ExportResults, ExportedResults,
                     "Results of a pool as CSV, TSV or JSON text (admin)", roles=ADMIN)
POOL_STATS = rpc("tasks", "pool_stats", PoolStatsRequest, PoolStats,
                 "Task and assignment counts of a pool (admin, manager)", roles=STAFF)

GET_TRUST_LIMITS = rpc("tasks", "get_trust_limits", TrustLimitsGet, TrustLimits,
                       "Limits per trust level (admin)", roles=ADMIN)
SET_TRUST_LIMITS = rpc("tasks", "set_trust_limits", TrustLimitsSet, TrustLimits,
                       "Set one trust level's limits (admin)", roles=ADMIN)
GET_WORKER_PROFILE = rpc("tasks", "get_worker_profile", WorkerProfileGet, WorkerProfile,
                         "A worker's profile (admin; a worker may read their own)",
                         roles={"admin", "worker"})
SET_TRUST_LEVEL = rpc("tasks", "set_trust_level", SetTrustLevel, WorkerProfile,
                      "Set a worker's trust level (admin; the gateway audits it)", roles=ADMIN)



class PoolCostRequest(RpcRequest):
    """A pool's maximum remaining cost, optionally as it would be after a change: with
    ``extra_tasks`` more tasks uploaded, or with ``dynamic_max_overlap`` set to this value
    (the gateway reserves for a change before making it)."""

    pool_id: Id
    extra_tasks: int = Field(0, ge=0, le=10_000_000)
    dynamic_max_overlap: Overlap | None = None


class PoolCost(BaseModel):
    """What a pool can cost at most: its price times every answer its tasks may still be
    paid for (each task's overlap, or the dynamic overlap's maximum when that is higher and
    the task is not a control task, less its accepted answers), for the budget reservation."""

    pool_id: str
    status: PoolStatus
    price_minor: int
    currency: Currency
    tasks: int
    answers_left: int
    max_cost_minor: int
    answers_per_task: int = Field(1, description="the most answers a task uploaded now may be "
                                                 "paid for (overlap or dynamic maximum)")
    sandbox: bool = Field(False, description="a sandbox pool: opened without a reserve")


POOL_COST = rpc("tasks", "pool_cost", PoolCostRequest, PoolCost,
                "A pool's maximum remaining cost (admin; for its budget)", roles=ADMIN)


class PoolPaceRequest(RpcRequest):
    pool_ids: list[Id] = Field(max_length=500)


class PoolPace(BaseModel):
    """How long a pool's accepted work took: the median of take -> submit over its accepted
    assignments (whole seconds each; a half second when the count is even), and the
    requester's declared figure. No money: the gateway prices it (fair pay)."""

    pool_id: str
    accepted_timed: int = Field(description="accepted assignments with a submit time")
    median_seconds: float | None
    expected_seconds_per_task: int | None


class PoolPaces(BaseModel):
    items: list[PoolPace]


POOL_PACE = rpc("tasks", "pool_pace", PoolPaceRequest, PoolPaces,
                "Median seconds per accepted task of pools (admin; for the fair-pay estimate)",
                roles=ADMIN)

# ------------------------------------------------ results, aggregation, pool quality

AggregationMethod = Literal["majority_vote", "wawa", "zero_based_skill", "gold_majority_vote",
                            "dawid_skene", "one_coin_dawid_skene", "glad", "mace"]
PoolKind = Literal["real", "training", "exam"]


class PoolQuality(BaseModel):
    """A pool's quality settings. ``kind``: ``training`` (answers checked against the known
    answer, the hint shown, no pay: the price must be 0), ``exam`` (the share of correct
    answers, 0..100, becomes the worker's ``exam_skill``) or ``real``. The mixer (real pools,
    when ``mixer_real + mixer_golden + mixer_training > 0``): each worker's takes go in
    suites of that many real, golden and training tasks. Dynamic overlap: a task whose
    majority-vote confidence after its overlap is below ``dynamic_confidence`` gets one more
    answer, up to ``dynamic_max_overlap``."""

    kind: PoolKind = "real"
    exam_skill: Annotated[str, NoNul] | None = Field(None, min_length=1, max_length=64)
    mixer_real: int = Field(0, ge=0, le=100)
    mixer_golden: int = Field(0, ge=0, le=100)
    mixer_training: int = Field(0, ge=0, le=100)
    dynamic_max_overlap: Overlap | None = None
    dynamic_confidence: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)


class PoolQualitySet(RpcRequest, PoolQuality):
    pool_id: Id


class PoolQualityView(PoolQuality):
    pool_id: str


class TaskHint(BaseModel):
    task_id: Id
    hint: Annotated[str, NoNul] = Field(min_length=1, max_length=5000)


class TaskHintsSet(RpcRequest):
    """Hints of known-answer tasks, shown to a worker after a training answer."""

    pool_id: Id
    hints: list[TaskHint] = Field(min_length=1, max_length=1000)


class TaskHintsSaved(BaseModel):
    saved: int


class AggregationRequest(RpcRequest):
    """Ask for a pool's aggregation by a method; a batch job computes it off the request path
    and again whenever the pool gets new answers."""

    pool_id: Id
    method: AggregationMethod = "majority_vote"


class AggregationState(BaseModel):
    pool_id: str
    method: AggregationMethod
    requested_at: datetime
    computed_at: datetime | None
    answers_used: int
    seconds: float | None
    error: str | None


class PoolResultsRequest(RpcRequest):
    pool_id: Id
    method: AggregationMethod = "majority_vote"
    page: Page = Page()


class TaskResult(BaseModel):
    task_id: str
    field: str
    answer: Any
    confidence: float = Field(description="0..1: the method's probability of the answer")
    answers: int = Field(description="answers the task had")


class PoolResults(BaseModel):
    state: AggregationState | None = Field(description="null: never asked for")
    items: list[TaskResult]
    total: int


class TrainingFeedback(BaseModel):
    """What a training (or golden) answer gets back: whether it was right, and the hint."""

    assignment_id: str
    correct: bool | None
    known_answers: dict[str, Any] | None
    hint: str | None


GET_POOL_QUALITY = rpc("tasks", "get_pool_quality", PoolGet, PoolQualityView,
                       "A pool's kind, mixer and dynamic overlap (admin, manager)", roles=STAFF)
SET_POOL_QUALITY = rpc("tasks", "set_pool_quality", PoolQualitySet, PoolQualityView,
                       "Set a pool's kind, mixer and dynamic overlap (admin)", roles=ADMIN)
SET_TASK_HINTS = rpc("tasks", "set_task_hints", TaskHintsSet, TaskHintsSaved,
                     "Hints of a pool's known-answer tasks (admin)", roles=ADMIN)
REQUEST_AGGREGATION = rpc("tasks", "request_aggregation", AggregationRequest, AggregationState,
                          "Ask for a pool's aggregated results by a method (admin)",
                          roles=ADMIN)
POOL_RESULTS = rpc("tasks", "pool_results", PoolResultsRequest, PoolResults,
                   "A pool's aggregated answers by one method (admin, manager)", roles=STAFF)
class AssignmentOwner(BaseModel):
    """Whose an assignment is: what its task chat needs to know of it (the gateway passes it
    on to support as it came)."""

    assignment_id: str = Field(min_length=1, max_length=36)
    worker_id: str = Field(min_length=1, max_length=64)
    pool_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=36)
    taken_at: datetime


ASSIGNMENT_OWNER = rpc("tasks", "assignment_owner", AssignmentRef, AssignmentOwner,
                       "An assignment's worker, pool and task, for its task chat (staff: "
                       "any assignment; a worker: only their own)", roles=ROLES)
TRAINING_FEEDBACK = rpc("tasks", "training_feedback", AssignmentRef, TrainingFeedback,
                        "After submitting a training task: right or wrong, and its hint "
                        "(worker)", roles=WORKER)

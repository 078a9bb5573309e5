"""Tasks service RPCs: projects, pools, task upload, the assignment lifecycle, worker limits.

HIDDEN-SHARE RULE: price fields (``price_minor``, ``currency``) appear only in replies to
admins; for workers and managers they are left out of the reply entirely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.rpc import Page, RpcRequest, rpc

FieldType = Literal["string", "integer", "number", "boolean", "url", "json", "file"]
PoolStatus = Literal["draft", "open", "closed", "archived"]
AssignmentStatus = Literal["ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED"]
TrustLevel = Literal["new", "verified", "trusted"]
ReviewMode = Literal["manual", "auto"]
CaptchaFrequency = Literal["none", "low", "high"]


# ------------------------------------------------------------------------ projects


class FieldSpec(BaseModel):
    """One field of a project's input or output spec."""

    name: str = Field(min_length=1, max_length=64)
    type: FieldType = "string"
    required: bool = True
    allowed_values: list[Any] | None = None
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=0)
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = Field(None, max_length=500, description="regex the whole value matches")


class ProjectCreate(RpcRequest):
    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field("", max_length=100_000, description="Markdown")
    input_spec: list[FieldSpec] = Field(min_length=1)
    output_spec: list[FieldSpec] = Field(min_length=1)


class ProjectUpdate(RpcRequest):
    project_id: str
    name: str | None = Field(None, min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=100_000)
    input_spec: list[FieldSpec] | None = None
    output_spec: list[FieldSpec] | None = None


class ProjectGet(RpcRequest):
    project_id: str


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


class Projects(BaseModel):
    items: list[Project]
    total: int


# --------------------------------------------------------------------------- pools


class SkillFilter(BaseModel):
    """``gte``: the worker's skill is at least ``value``; ``absent``: the worker has no such skill."""

    skill: str = Field(min_length=1, max_length=64)
    op: Literal["gte", "absent"] = "gte"
    value: int | None = None


class PoolCreate(RpcRequest):
    project_id: str
    name: str = Field(min_length=1, max_length=200)
    price_minor: int = Field(ge=0)
    currency: str = Field("RUB", min_length=3, max_length=3)
    overlap: int = Field(1, ge=1, le=1000)
    assignment_timeout_s: int = Field(600, ge=1, le=7 * 24 * 3600)
    auto_accept_after_s: int | None = Field(None, ge=0)
    review_mode: ReviewMode = "manual"
    captcha_frequency: CaptchaFrequency = "none"
    skill_filters: list[SkillFilter] = []
    priority: int = Field(0, ge=-1000, le=1000)


class PoolUpdate(RpcRequest):
    """Change a pool's settings; omitted fields stay. The price and currency only while
    the pool is a draft: once open, workers took its tasks at that price. ``overlap`` is
    the default for tasks uploaded afterwards (a task keeps the overlap it got)."""

    pool_id: str
    name: str | None = Field(None, min_length=1, max_length=200)
    price_minor: int | None = Field(None, ge=0)
    currency: str | None = Field(None, min_length=3, max_length=3)
    overlap: int | None = Field(None, ge=1, le=1000)
    assignment_timeout_s: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    auto_accept_after_s: int | None = Field(None, ge=0)
    review_mode: ReviewMode | None = None
    captcha_frequency: CaptchaFrequency | None = None
    skill_filters: list[SkillFilter] | None = None
    priority: int | None = Field(None, ge=-1000, le=1000)


class PoolGet(RpcRequest):
    pool_id: str


class PoolList(RpcRequest):
    project_id: str | None = None
    status: PoolStatus | None = None
    page: Page = Page()


class PoolTransition(RpcRequest):
    pool_id: str


class Pool(BaseModel):
    """A pool; ``price_minor`` and ``currency`` are present for admins only."""

    pool_id: str
    project_id: str
    name: str
    price_minor: int | None = None
    currency: str | None = None
    overlap: int
    assignment_timeout_s: int
    auto_accept_after_s: int | None
    review_mode: ReviewMode
    captcha_frequency: CaptchaFrequency
    skill_filters: list[SkillFilter]
    priority: int
    status: PoolStatus
    created_at: datetime
    updated_at: datetime


class Pools(BaseModel):
    items: list[Pool]
    total: int


# --------------------------------------------------------------------------- tasks


class TasksUpload(RpcRequest):
    """Rows as JSON (a list of objects, or a JSON text of one) or TSV text (header = field names).

    Input fields may be written ``INPUT:name`` or ``name``; control (golden) answers as
    ``GOLDEN:name``. A JSON row may also be ``{"input_values": {...}, "known_solutions": {...}}``.
    """

    pool_id: str
    format: Literal["json", "tsv"] = "json"
    content: str | list[Any]
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
    pool_id: str
    page: Page = Page()


class TaskItem(BaseModel):
    task_id: str
    pool_id: str
    input: dict[str, Any]
    is_control: bool
    control_answers: dict[str, Any] | None = Field(None, description="admins only")
    overlap: int
    live_assignments: int
    created_at: datetime


class Tasks(BaseModel):
    items: list[TaskItem]
    total: int


# --------------------------------------------------------------------- assignments


class Take(RpcRequest):
    pool_id: str | None = Field(None, description="None = any open pool the worker may use")


class AssignmentRef(RpcRequest):
    assignment_id: str


class Submit(RpcRequest):
    assignment_id: str
    answers: dict[str, Any]
    comment: str | None = Field(None, max_length=10_000)
    proof_url: str | None = Field(None, max_length=2000)
    proof_text: str | None = Field(None, max_length=10_000)


class Report(RpcRequest):
    assignment_id: str
    reason: str = Field(min_length=1, max_length=64)
    text: str = Field("", max_length=10_000)


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


class TakeResult(Assignment):
    pool_name: str
    instructions: str
    output_spec: list[FieldSpec]


class MyAssignments(RpcRequest):
    status: AssignmentStatus | None = None
    pool_id: str | None = None
    page: Page = Page()


class Assignments(BaseModel):
    items: list[Assignment]
    total: int


class ReportResult(BaseModel):
    reported: bool


class CaptchaAnswer(RpcRequest):
    challenge_id: str
    answer: str = Field(max_length=64)


class CaptchaResult(BaseModel):
    correct: bool


class AvailablePools(RpcRequest):
    page: Page = Page()


class AvailablePool(BaseModel):
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

    pool_id: str
    format: Literal["csv", "tsv", "json"] = "csv"
    status: AssignmentStatus | None = None
    cursor: str | None = Field(None, max_length=200)
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
    pool_id: str


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
    min_pause_s: float = Field(ge=0, le=86_400)
    assignment_timeout_s: int | None = Field(None, ge=1,
                                             description="used when shorter than the pool's")


class TrustLimitsGet(RpcRequest):
    pass


class TrustLimitsSet(RpcRequest):
    limits: TrustLevelLimits


class TrustLimits(BaseModel):
    levels: list[TrustLevelLimits]


class WorkerProfileGet(RpcRequest):
    worker_id: str


class SetTrustLevel(RpcRequest):
    worker_id: str
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

CREATE_PROJECT = rpc("tasks", "create_project", ProjectCreate, Project, "Create a project (admin)")
GET_PROJECT = rpc("tasks", "get_project", ProjectGet, Project, "One project (admin, manager)")
LIST_PROJECTS = rpc("tasks", "list_projects", ProjectList, Projects, "Projects (admin, manager)")
UPDATE_PROJECT = rpc("tasks", "update_project", ProjectUpdate, Project, "Change a project (admin)")

CREATE_POOL = rpc("tasks", "create_pool", PoolCreate, Pool, "Create a draft pool (admin)")
UPDATE_POOL = rpc("tasks", "update_pool", PoolUpdate, Pool,
                  "Change a pool's settings; price and currency only in draft (admin)")
GET_POOL = rpc("tasks", "get_pool", PoolGet, Pool, "One pool (admin; managers without price)")
LIST_POOLS = rpc("tasks", "list_pools", PoolList, Pools, "Pools (admin; managers without price)")
OPEN_POOL = rpc("tasks", "open_pool", PoolTransition, Pool, "draft/closed -> open (admin)")
CLOSE_POOL = rpc("tasks", "close_pool", PoolTransition, Pool, "open -> closed (admin)")
ARCHIVE_POOL = rpc("tasks", "archive_pool", PoolTransition, Pool,
                   "closed/draft -> archived (admin)")

UPLOAD_TASKS = rpc("tasks", "upload_tasks", TasksUpload, UploadResult,
                   "Bulk upload tasks as JSON or TSV, checked against the input spec (admin)")
LIST_TASKS = rpc("tasks", "list_tasks", TaskList, Tasks, "Tasks of a pool (admin, manager)")

TAKE = rpc("tasks", "take", Take, TakeResult,
           "Take a task (worker); errors: no_tasks_available 404, take_limit 429, "
           "captcha_required 428, restricted 403")
SUBMIT = rpc("tasks", "submit", Submit, Assignment,
             "Submit answers (worker); invalid_answers 422 with an error per field")
SKIP = rpc("tasks", "skip", AssignmentRef, Assignment, "Give an active assignment back (worker)")
REPORT = rpc("tasks", "report", Report, ReportResult, "Report a problem with a task (worker)")
CAPTCHA_ANSWER = rpc("tasks", "captcha_answer", CaptchaAnswer, CaptchaResult,
                     "Answer the captcha a take asked for (worker)")
MY_ASSIGNMENTS = rpc("tasks", "my_assignments", MyAssignments, Assignments,
                     "The calling worker's assignments")
AVAILABLE_POOLS = rpc("tasks", "available_pools", AvailablePools, AvailablePoolList,
                      "Open pools the calling worker may take from, with free task counts")

EXPORT_RESULTS = rpc("tasks", "export_results", ExportResults, ExportedResults,
                     "Results of a pool as CSV, TSV or JSON text (admin)")
POOL_STATS = rpc("tasks", "pool_stats", PoolStatsRequest, PoolStats,
                 "Task and assignment counts of a pool (admin, manager)")

GET_TRUST_LIMITS = rpc("tasks", "get_trust_limits", TrustLimitsGet, TrustLimits,
                       "Limits per trust level (admin)")
SET_TRUST_LIMITS = rpc("tasks", "set_trust_limits", TrustLimitsSet, TrustLimits,
                       "Set one trust level's limits (admin)")
GET_WORKER_PROFILE = rpc("tasks", "get_worker_profile", WorkerProfileGet, WorkerProfile,
                         "A worker's profile (admin; a worker may read their own)")
SET_TRUST_LEVEL = rpc("tasks", "set_trust_level", SetTrustLevel, WorkerProfile,
                      "Set a worker's trust level (admin; the gateway audits it)")

"""Tasks' own tables: projects, pools, tasks, assignments, worker profiles and limits."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()

projects = Table(
    "projects", metadata,
    Column("project_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("instructions", Text, nullable=False, server_default=""),
    Column("input_spec", JSON, nullable=False),
    Column("output_spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # fixed at creation and copied to the project's pools and their assignments
    Column("sandbox", Boolean, nullable=False, server_default=false()),
)

pools = Table(
    "pools", metadata,
    Column("pool_id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.project_id"), nullable=False,
           index=True),
    Column("name", String(200), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("overlap", Integer, nullable=False),
    Column("assignment_timeout_s", Integer, nullable=False),
    Column("auto_accept_after_s", Integer, nullable=True),
    Column("review_mode", String(8), nullable=False),
    Column("captcha_frequency", String(8), nullable=False),
    Column("skill_filters", JSON, nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    # the requester's declared seconds per task: the fair-pay estimate until measured
    Column("expected_seconds_per_task", Integer, nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sandbox", Boolean, nullable=False, server_default=false()),
    CheckConstraint("status IN ('draft', 'open', 'closed', 'archived')", name="ck_pools_status"),
    CheckConstraint("price_minor >= 0", name="ck_pools_price"),
)

tasks = Table(
    "tasks", metadata,
    Column("task_id", String(36), primary_key=True),
    Column("pool_id", String(36), ForeignKey("pools.pool_id"), nullable=False),
    Column("project_id", String(36), nullable=False),
    Column("input", JSON, nullable=False),
    Column("control_answers", JSON, nullable=True),
    Column("is_control", Boolean, nullable=False, server_default=false()),
    Column("overlap", Integer, nullable=False),
    # ACTIVE + SUBMITTED + ACCEPTED assignments; kept in step under the task row's lock.
    Column("live_count", Integer, nullable=False, server_default="0"),
    Column("accepted_count", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
    # the counts move under the task row's lock; below zero would mean a slot given back twice
    CheckConstraint("live_count >= 0 AND accepted_count >= 0", name="ck_tasks_counts"),
    Index("ix_tasks_pool_order", "pool_id", "created_at", "position"),
    # Take scans only tasks with a free slot, so full and finished tasks cost nothing.
    Index("ix_tasks_pool_free", "pool_id", "created_at", "position",
          postgresql_where=text("live_count < overlap")),
)

assignments = Table(
    "assignments", metadata,
    Column("assignment_id", String(36), primary_key=True),
    Column("task_id", String(36), ForeignKey("tasks.task_id"), nullable=False),
    Column("pool_id", String(36), nullable=False),
    Column("project_id", String(36), nullable=False),
    Column("worker_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("is_control", Boolean, nullable=False, server_default=false()),
    Column("answers", JSON, nullable=True),
    Column("comment", Text, nullable=True),
    Column("proof", Text, nullable=True),
    Column("review_comment", Text, nullable=True),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # who decided (a manager's id, 'auto' or 'rules'), for the results export
    Column("decided_by", String(64), nullable=True),
    Column("sandbox", Boolean, nullable=False, server_default=false()),
    # A task never goes twice to the same worker, whatever became of the first assignment.
    UniqueConstraint("task_id", "worker_id", name="uq_assignments_task_worker"),
    CheckConstraint("status IN ('ACTIVE', 'SUBMITTED', 'ACCEPTED', 'REJECTED', 'SKIPPED', "
                    "'EXPIRED')", name="ck_assignments_status"),
    Index("ix_assignments_worker_status", "worker_id", "status"),
    Index("ix_assignments_status_deadline", "status", "deadline_at"),
    Index("ix_assignments_pool_status", "pool_id", "status"),
)

workers = Table(
    "workers", metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("trust_level", String(16), nullable=False, server_default="new"),
    Column("skills", JSON, nullable=False),
    Column("last_take_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

trust_limits = Table(
    "trust_limits", metadata,
    Column("level", String(16), primary_key=True),
    Column("max_active", Integer, nullable=False),
    Column("min_pause_s", Float, nullable=False),
    Column("assignment_timeout_s", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

restrictions = Table(
    "restrictions", metadata,
    Column("restriction_id", String(64), primary_key=True),
    Column("worker_id", String(64), nullable=False, index=True),
    Column("scope", String(8), nullable=False),
    Column("pool_id", String(36), nullable=True),
    Column("project_id", String(36), nullable=True),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Per (worker, pool) take counter: drives the captcha cadence.
worker_pool_takes = Table(
    "worker_pool_takes", metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("pool_id", String(36), primary_key=True),
    Column("takes", Integer, nullable=False, server_default="0"),
    Column("captcha_passed_for", Integer, nullable=False, server_default="0"),
)

captcha_challenges = Table(
    "captcha_challenges", metadata,
    Column("challenge_id", String(36), primary_key=True),
    Column("worker_id", String(64), nullable=False),
    Column("pool_id", String(36), nullable=False),
    Column("project_id", String(36), nullable=False),
    Column("answer", String(32), nullable=False),
    Column("for_take", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# A pool's quality settings (results slice): what kind of pool it is, the mixer, dynamic
# overlap and the default aggregation. No row = a real pool without mixer or dynamic overlap.
pool_quality = Table(
    "pool_quality", metadata,
    Column("pool_id", String(36), ForeignKey("pools.pool_id"), primary_key=True),
    Column("kind", String(8), nullable=False, server_default="real"),
    Column("exam_skill", String(64), nullable=True),
    Column("mixer_real", Integer, nullable=False, server_default="0"),
    Column("mixer_golden", Integer, nullable=False, server_default="0"),
    Column("mixer_training", Integer, nullable=False, server_default="0"),
    Column("dynamic_max_overlap", Integer, nullable=True),
    Column("dynamic_confidence", Float, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('real', 'training', 'exam')", name="ck_pool_quality_kind"),
)

# A known-answer task's hint, shown to a worker after a training answer.
task_hints = Table(
    "task_hints", metadata,
    Column("task_id", String(36), ForeignKey("tasks.task_id"), primary_key=True),
    Column("hint", Text, nullable=False),
)

# Which aggregations a pool wants and how far each got: the batch job recomputes one when
# its pool has answers decided after ``computed_at`` (or it was asked for again).
pool_aggregations = Table(
    "pool_aggregations", metadata,
    Column("pool_id", String(36), ForeignKey("pools.pool_id"), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=True),
    Column("answers_used", BigInteger, nullable=False, server_default="0"),
    Column("seconds", Float, nullable=True),
    Column("error", Text, nullable=True),
)

# One aggregated answer per task, output field and method.
task_results = Table(
    "task_results", metadata,
    Column("task_id", String(36), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("pool_id", String(36), nullable=False),
    Column("answer", JSON, nullable=True),
    Column("confidence", Float, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    # the task needed no more answers when the run read them (accepted >= overlap)
    Column("final", Boolean, nullable=False, server_default=false()),
    Index("ix_task_results_pool_method", "pool_id", "method", "task_id"),
)

# How long accepted work took, per pool: a histogram of take -> submit in whole seconds
# (never written on the take or submit path). The fair-pay estimate's median is read from
# it, so it costs the distinct durations, not the assignments. An acceptance appends its
# duration to ``pool_pace_pending`` (a new row: no two acceptances wait for one row, as
# they did updating the same bucket); ``pace.fold_pace`` moves the pending rows into the
# histogram every few seconds, and a read adds the rows not folded yet.
pool_pace = Table(
    "pool_pace", metadata,
    Column("pool_id", String(36), primary_key=True),
    Column("seconds", Integer, primary_key=True),
    Column("accepted", BigInteger, nullable=False),
    CheckConstraint("seconds >= 1 AND accepted >= 1", name="ck_pool_pace_positive"),
)
pool_pace_pending = Table(
    "pool_pace_pending", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("pool_id", String(36), nullable=False),
    Column("seconds", Integer, nullable=False),
    CheckConstraint("seconds >= 1", name="ck_pool_pace_pending_positive"),
)

# The last final result published (``task.result_ready``) per task and method: a run
# records an event only for a final result that is new or whose answers differ from it.
task_result_events = Table(
    "task_result_events", metadata,
    Column("task_id", String(36), ForeignKey("tasks.task_id"), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("pool_id", String(36), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("answers", JSONB, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("revision >= 1", name="ck_task_result_events_revision"),
)

outbox, inbox = add_messaging_tables(metadata)

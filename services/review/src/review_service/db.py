"""Review's own tables: one row per submitted assignment (queue, lock and decision).

No money: review decides, the ledger knows each pool's price (``task.pool_opened``).
"""

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()

submissions = Table(
    "submissions", metadata,
    Column("assignment_id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("pool_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("worker_id", String(64), nullable=False),
    Column("answers", JSON, nullable=False),
    Column("comment", Text, nullable=True),
    Column("proof", Text, nullable=True),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("review_mode", String(8), nullable=False),
    Column("auto_accept_at", DateTime(timezone=True), nullable=True),
    Column("is_control", Boolean, nullable=False, server_default=false()),
    Column("control_correct", Boolean, nullable=True),
    Column("status", String(16), nullable=False),
    Column("lock_holder", String(64), nullable=True),
    Column("lock_until", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("review_comment", Text, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # staff trying a sandbox pool: reviewed as usual, left out of every statistic
    Column("sandbox", Boolean, nullable=False, server_default=false()),
    CheckConstraint("status IN ('pending', 'accepted', 'rejected')",
                    name="ck_submissions_status"),
    CheckConstraint("review_mode IN ('manual', 'auto')", name="ck_submissions_review_mode"),
)

_PENDING = submissions.c.status == "pending"
# The queue (oldest first, per pool), the auto-accept sweeper, rules' per-worker
# bulk decisions, stats and decision history each get the index they scan.
Index("ix_submissions_pending_pool", submissions.c.pool_id, submissions.c.submitted_at,
      postgresql_where=_PENDING)
Index("ix_submissions_pending_all", submissions.c.submitted_at, postgresql_where=_PENDING)
Index("ix_submissions_auto_accept", submissions.c.auto_accept_at, postgresql_where=_PENDING)
Index("ix_submissions_worker_pool_status", submissions.c.worker_id, submissions.c.pool_id,
      submissions.c.status)
Index("ix_submissions_pool_status_worker", submissions.c.pool_id, submissions.c.status,
      submissions.c.worker_id)
Index("ix_submissions_pool_decided", submissions.c.pool_id, submissions.c.decided_at)
Index("ix_submissions_worker_decided", submissions.c.worker_id, submissions.c.decided_at)
Index("ix_submissions_decided", submissions.c.decided_at)

# A worker's appeal of a rejection (subject: the assignment) or a restriction (subject:
# the restriction); one per worker and subject, decided once by a manager.
appeals = Table(
    "appeals", metadata,
    Column("appeal_id", String(36), primary_key=True),
    Column("worker_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("pool_id", String(64), nullable=True),
    Column("message", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reply", Text, nullable=True),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("worker_id", "kind", "subject_id", name="uq_appeals_once"),
    CheckConstraint("kind IN ('rejection', 'restriction')", name="ck_appeals_kind"),
    CheckConstraint("status IN ('pending', 'upheld', 'denied')", name="ck_appeals_status"),
)
Index("ix_appeals_status_filed", appeals.c.status, appeals.c.filed_at)

outbox, inbox = add_messaging_tables(metadata)

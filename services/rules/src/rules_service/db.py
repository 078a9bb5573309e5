"""The rules service's own tables."""

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()


class Json(TypeDecorator[Any]):
    """JSON documents stored as text, (de)serialized with orjson.

    Collector state rows are read and written for every event; the standard
    library's json was a fifth of the hot path's CPU.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else orjson.loads(value)


rules = Table(
    "rules", metadata,
    Column("rule_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("pool_id", String(64), nullable=True, index=True),
    Column("project_id", String(64), nullable=True, index=True),
    Column("collector", Json(), nullable=False),
    Column("conditions", Json(), nullable=False),
    Column("action", Json(), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("evidence_public", Boolean, nullable=False, server_default="true"),
)

# Every version of a rule (the first is written when it is created, one more per edit):
# the firings name the version that fired, and explain shows it.
rule_versions = Table(
    "rule_versions", metadata,
    Column("rule_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("collector", Json(), nullable=False),
    Column("conditions", Json(), nullable=False),
    Column("action", Json(), nullable=False),
    Column("evidence_public", Boolean, nullable=False),
    Column("edited_by", String(64), nullable=False),
    Column("edited_at", DateTime(timezone=True), nullable=False),
)

# Collector state per (worker, pool key): {rule_id: {counters, ring, hour buckets,
# latch, restriction}}. One row per worker and pool keeps the writes per event at
# one row however many rules watch the pool.
collector_state = Table(
    "collector_state", metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("pool_key", String(64), primary_key=True),
    Column("data", Json(), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Majority vote: the answers given to one task, per rule: {rule_id: {answers, majority}}.
task_votes = Table(
    "task_votes", metadata,
    Column("task_id", String(64), primary_key=True),
    Column("data", Json(), nullable=False),
)

# What each worker submitted (for re-execution task lists, review status, review mode).
submissions = Table(
    "submissions", metadata,
    Column("assignment_id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("pool_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=True),
    Column("worker_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("review_mode", String(16), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Index("ix_submissions_worker_pool", "worker_id", "pool_id"),
)

# Compact record of every consumed fact: the backtest replays these.
recorded_facts = Table(
    "recorded_facts", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("worker_id", String(64), nullable=False),
    Column("pool_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=True),
    Column("task_id", String(64), nullable=True),
    Column("data", Json(), nullable=False),
    Index("ix_recorded_facts_pool_seq", "pool_id", "seq"),
    Index("ix_recorded_facts_worker_pool_seq", "worker_id", "pool_id", "seq"),
)

firings = Table(
    "firings", metadata,
    Column("firing_id", String(36), primary_key=True),
    Column("rule_id", String(36), nullable=False, index=True),
    Column("worker_id", String(64), nullable=False),
    Column("pool_id", String(64), nullable=True),
    Column("project_id", String(64), nullable=True),
    Column("fired_at", DateTime(timezone=True), nullable=False),
    Column("action", Json(), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("facts", Json(), nullable=False),
    Column("rule_version", Integer, nullable=True),
    Index("ix_firings_worker_time", "worker_id", "fired_at"),
)

restrictions = Table(
    "restrictions", metadata,
    Column("restriction_id", String(36), primary_key=True),
    Column("rule_id", String(36), nullable=False),
    Column("firing_id", String(36), nullable=False, unique=True),
    Column("worker_id", String(64), nullable=False, index=True),
    Column("scope", String(16), nullable=False),
    Column("pool_id", String(64), nullable=True),
    Column("project_id", String(64), nullable=True),
    Column("pool_key", String(64), nullable=False),
    Column("private_comment", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    # 'rule' or 'manual' (rule_id 'manual', firing_id = restriction_id, applied_by set)
    Column("source", String(16), nullable=False, server_default="rule"),
    Column("applied_by", String(64), nullable=True),
    Column("rule_version", Integer, nullable=True),
    Index("ix_restrictions_due", "until", postgresql_where="lifted_at IS NULL"),
)

outbox, inbox = add_messaging_tables(metadata)

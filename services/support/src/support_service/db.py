"""Support's own tables."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()

tickets = Table(
    "tickets", metadata,
    Column("ticket_id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("assignment_id", String(36), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("pool_id", String(64), nullable=True, index=True),
    Column("assigned_to", String(64), nullable=True, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("first_answered_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Index("ix_tickets_status_created", "status", "created_at"),
)

# The thread of a ticket: the opening text is its first message.
ticket_messages = Table(
    "ticket_messages", metadata,
    Column("message_id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("author_role", String(16), nullable=False),
    Column("from_staff", Boolean, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_ticket_messages_ticket", "ticket_id", "created_at"),
)

# Who works on an assignment (from task.taken): the task chat's worker.
chat_assignments = Table(
    "chat_assignments", metadata,
    Column("assignment_id", String(36), primary_key=True),
    Column("worker_id", String(64), nullable=False, index=True),
    Column("pool_id", String(64), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
)

# Pools that were opened at least once (from task.pool_opened): their general chat exists.
chat_pools = Table(
    "chat_pools", metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)

chat_messages = Table(
    "chat_messages", metadata,
    Column("message_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("author_role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("deleted_by", String(64), nullable=True),
    Index("ix_chat_messages_thread", "kind", "ref", "created_at"),
    Index("ix_chat_messages_author", "author_id", "created_at"),
)

chat_mutes = Table(
    "chat_mutes", metadata,
    Column("user_id", String(64), primary_key=True),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("by_user_id", String(64), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Leads from the public form; ``address_hash`` (sha256 of the client address) only for
# the rate limit's look-up of a sender's attempts, never shown.
leads = Table(
    "leads", metadata,
    Column("lead_id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("contact", String(200), nullable=False),
    Column("company", String(200), nullable=False, server_default=""),
    Column("message", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("address_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_leads_status_created", leads.c.status, leads.c.created_at)

# Every post of the form (accepted, refused or a honeypot hit), for the per-address limit.
lead_attempts = Table(
    "lead_attempts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("address_hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_lead_attempts_address_at", lead_attempts.c.address_hash, lead_attempts.c.at)

# Single-use captcha challenges of the lead form, bound to the address they were shown to.
lead_captchas = Table(
    "lead_captchas", metadata,
    Column("challenge_id", String(36), primary_key=True),
    Column("address_hash", String(64), nullable=False),
    Column("answer", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used", Boolean, nullable=False, server_default="false"),
)

# A worker's acceptance of one version of a legal document: recorded once.
legal_acceptances = Table(
    "legal_acceptances", metadata,
    Column("user_id", String(64), primary_key=True),
    Column("doc_id", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("lang", String(2), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
)

# Proposed configuration changes ("safe mode") and manual patches: the value each setting
# had when proposed (``before``) and the proposed one (``after``), as JSON; what became of it.
config_changes = Table(
    "config_changes", metadata,
    Column("change_id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("target", String(64), nullable=True),
    Column("before", JSONB, nullable=True),
    Column("after", JSONB, nullable=False),
    Column("money", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("patch", Boolean, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("reverts", String(36), nullable=True),
    Column("reverted_by", String(36), nullable=True),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("current", JSONB, nullable=True),
    Column("error", JSONB, nullable=True),
    CheckConstraint("state IN ('proposed', 'applied', 'rejected', 'failed', 'stale')",
                    name="ck_config_changes_state"),
)
Index("ix_config_changes_state_created", config_changes.c.state, config_changes.c.created_at)
# At most one open revert per applied change.
Index("uq_config_changes_open_revert", config_changes.c.reverts, unique=True,
      postgresql_where=config_changes.c.state == "proposed")

# Webhooks (webhooks.py): subscriptions, one delivery per (subscription, event), and every
# attempt of a delivery (its log).
webhook_subscriptions = Table(
    "webhook_subscriptions", metadata,
    Column("subscription_id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("kinds", JSON, nullable=False),
    Column("description", String(200), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("delivery_id", String(36), primary_key=True),
    Column("subscription_id", String(36), ForeignKey("webhook_subscriptions.subscription_id"),
           nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("give_up_after", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts", metadata,
    Column("attempt_id", BigInteger, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), ForeignKey("webhook_deliveries.delivery_id"),
           nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

outbox, inbox = add_messaging_tables(metadata)

"""Support's own tables."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, MetaData, String, Table, Text

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

outbox, inbox = add_messaging_tables(metadata)

"""Support's own tables."""

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

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

outbox, inbox = add_messaging_tables(metadata)

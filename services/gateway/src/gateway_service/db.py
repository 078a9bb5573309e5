"""The gateway's own tables: accounts, credentials, sessions, MFA, login links, audit."""

from sqlalchemy import (
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

from servicekit.messaging_tables import add_messaging_tables

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("user_id", String(36), primary_key=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    # A temporary password (bootstrap or set by an admin) must be replaced before use.
    Column("must_change_password", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=True),
    # Set by an admin: no login, every session ended, until enabled again.
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("role IN ('worker', 'manager', 'admin')", name="ck_users_role"),
)

# One-row facts of this gateway deployment, e.g. "bootstrap" once the admin was created.
gateway_markers = Table(
    "gateway_markers", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(36), primary_key=True),
    # HMAC-SHA256(pepper, token): the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(36), ForeignKey("users.user_id"), nullable=False, index=True),
    # How the session was opened: password / link / dev. Only password sessions of a user
    # with a temporary password are held to the forced change.
    Column("method", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("mfa_elevated_until", DateTime(timezone=True), nullable=True),
    # Last request seen (written at most once a minute): drives the idle timeout.
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("method IN ('password', 'link', 'dev')", name="ck_sessions_method"),
)

# Attempts counted per key, shared by every replica: "acct:<login>", "addr:<ip>",
# "mfa:<user id>". An attempt is counted before its password or code is checked.
login_throttle = Table(
    "login_throttle", metadata,
    Column("key", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True), nullable=True),
    # How many times the key was blocked recently: drives the exponential Retry-After.
    Column("strikes", Integer, nullable=False),
)

mfa_credentials = Table(
    "mfa_credentials", metadata,
    Column("user_id", String(36), ForeignKey("users.user_id"), primary_key=True),
    Column("secret", String(255), nullable=False),  # sealed: security.mfa.SecretBox
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
)

# A TOTP time step accepted once per user: the UNIQUE key refuses replays, also in races.
mfa_used_steps = Table(
    "mfa_used_steps", metadata,
    Column("user_id", String(36), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "step", name="uq_mfa_used_step"),
)

mfa_recovery_codes = Table(
    "mfa_recovery_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.user_id"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

login_links = Table(
    "login_links", metadata,
    Column("link_id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(36), ForeignKey("users.user_id"), nullable=False, index=True),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# Append-only: the code has no UPDATE/DELETE path and a trigger refuses both (and TRUNCATE).
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor_user_id", String(64), nullable=True),
    Column("target", String(128), nullable=True),
    Column("address", String(64), nullable=True),
    Column("details", Text, nullable=False),
)
Index("ix_audit_kind_at", audit_log.c.kind, audit_log.c.at)
Index("ix_audit_actor_at", audit_log.c.actor_user_id, audit_log.c.at)
Index("ix_audit_target_at", audit_log.c.target, audit_log.c.at)

outbox, inbox = add_messaging_tables(metadata)

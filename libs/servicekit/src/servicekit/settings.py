"""Typed settings per service, read from the environment with a service prefix."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "changethis", "secret", "password",
                       "dev", "development", "example", "xxx", "todo"}


class ServiceSettings(BaseSettings):
    """Base settings; a service subclasses it with ``env_prefix="<SVC>_"``.

    Every ``SecretStr`` field is refused when it holds a placeholder and the
    environment is not ``development`` or ``test``.
    """

    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore")
    # SecretStr fields that may be empty in production (an optional feature's key)
    optional_secrets: ClassVar[frozenset[str]] = frozenset()

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    # postgresql://user:password@host:port/database (required; the launcher and the
    # deployments set it per service)
    database_url: str = ""
    nats_url: str = "nats://127.0.0.1:4222"
    # The process's own NATS user (launcher.busauth gives each process one, with
    # least-privilege permissions); empty = connect without credentials (a bare bus).
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    # CA bundle that signed the servers' certificates (tls:// URLs); hostnames verified
    nats_tls_ca_file: str | None = None
    # Reply subjects of this process (the permissions let each user read only its own);
    # empty = "_INBOX_<nats_user>" with a user, nats-py's "_INBOX" without
    nats_inbox_prefix: str = ""
    # create or update the streams at start; off where a provisioner owns them (a service's
    # user may not change streams)
    ensure_streams: bool = True
    # start() waits this long for the schema to reach head (the migration step runs
    # apart), then fails so the orchestrator restarts the process
    schema_wait_s: float = 600.0
    http_host: str = "127.0.0.1"
    http_port: int = 0
    stream_replicas: int = 1
    stream_sync_always: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 1.0  # of root traces, when exporting
    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.2
    # after a commit wakes the relay, how long further commits may join the same pass
    relay_linger_s: float = 0.005
    # deliveries of a message whose handler fails with an unexpected error before it is
    # dead-lettered (waiting on a lock or a dependency never counts: see servicekit.consumer)
    consumer_max_deliver: int = 8
    # a handler still running keeps its messages with in-progress acks every third of this
    consumer_ack_wait_s: float = 30.0
    consumer_batch_size: int = 50
    # how long a consumer waits, after a message arrives, for more to share its transaction
    consumer_linger_s: float = 0.005
    rpc_concurrency: int = 64
    db_pool_size: int = 10
    # a statement waiting longer than this for a lock fails (and is retried), in ms
    db_lock_timeout_ms: int = 5_000
    db_statement_timeout_ms: int = 30_000
    # Young-generation GC threshold once started (0 = Python's default, 700): see tune_gc.
    gc_gen0_threshold: int = 50_000
    # Extra connections opened under bursts and closed when returned: each costs a new
    # PostgreSQL backend (fork, auth), so under sustained load they churn. Off by default.
    db_max_overflow: int = 0

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        bad = [
            name
            for name, value in self.__dict__.items()
            if isinstance(value, SecretStr)
            and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            # no NATS user, no NATS password (a bare bus is refused below instead)
            and not (name == "nats_password" and not self.nats_user)
            # a secret of an optional feature may stay empty (the feature is then off)
            and not (name in self.optional_secrets and not value.get_secret_value())
        ]
        if not self.nats_user:
            bad.append("nats_user (a production process connects as its own NATS user)")
        if bad:
            raise ValueError(
                f"placeholder secret(s) {', '.join(sorted(bad))} refused in "
                f"environment {self.environment!r}: set real values"
            )
        return self


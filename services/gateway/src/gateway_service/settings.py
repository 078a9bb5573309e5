"""The gateway's settings (``GATEWAY_*`` environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from contracts.streams import EMERGENCY_BUCKET
from servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    http_port: int = 8000
    # /metrics, /healthz and /readyz for Prometheus and operators (same host as http_port);
    # the public port serves no /metrics (0 = no ops port)
    ops_port: int = 8100
    # nats-server monitoring endpoints (a JSON list, e.g. ["http://nats-0.nats:8222", ...]):
    # diagnostics then names JetStream's meta leader and peers from a node's /jsz. Without
    # them, quorum is judged from the JetStream API and peers from the streams.
    nats_monitor_urls: list[str] = []
    # Pepper mixed into token hashes; placeholder refused outside development/test.
    token_pepper: SecretStr = SecretStr("dev-pepper-not-for-production")
    # Encrypts TOTP secrets at rest (any high-entropy string; a Fernet key is derived from it).
    mfa_encryption_key: SecretStr = SecretStr("dev-mfa-key-not-for-production")
    # Keys used before (newest first, a JSON list): secrets sealed with them still open, and
    # are sealed again with mfa_encryption_key when next used. Rotate by moving the current
    # key here and setting a new one.
    mfa_previous_keys: list[SecretStr] = []
    session_ttl_s: int = 12 * 3600
    # ASVS L2 (3.3.2): re-authentication after 30 minutes without a request
    session_idle_timeout_s: int = 30 * 60
    mfa_elevation_s: int = 300
    # Seconds a replica may reuse a session row (0 = off). Changes invalidate at once on
    # every replica over NATS; the TTL bounds what a lost notice can cost.
    session_cache_ttl_s: float = 5.0
    dev_quick_login: bool = False
    behind_tls: bool = False
    rpc_timeout_s: float = 10.0
    # the access log (logger gateway.access): every request, only 4xx/5xx answers, or none
    # (make run's console shows only errors; the metrics count every request anyway)
    access_log: Literal["all", "errors", "off"] = "all"
    version: str = "0.1.0"
    public_url: str = "http://127.0.0.1:8000"
    # Addresses (or networks, e.g. 10.0.0.0/8) of reverse proxies whose X-Forwarded-For is
    # believed: the client address is the last hop before them. Empty: the socket peer, and
    # X-Forwarded-For is ignored.
    trusted_proxies: list[str] = []
    # Host names the gateway answers (a JSON list; "*.example.com" matches subdomains, "*"
    # any).
    # Empty: in development the loopback names and public_url's host, elsewhere any host.
    allowed_hosts: list[str] = []
    login_account_max_failures: int = 5
    # Attempts in flight count against an address until they succeed, so this also bounds
    # concurrent logins from one address (an office behind one NAT): far above one account's.
    login_address_max_failures: int = 100
    login_failure_window_s: int = 15 * 60
    login_backoff_base_s: int = 30
    login_backoff_max_s: int = 15 * 60
    mfa_max_failures: int = 5
    login_link_ttl_s: int = 24 * 3600
    emergency_retry_after_s: int = 120
    # Longest life of one live-updates stream (GET /api/live) before the browser reconnects.
    live_max_s: float = 300.0
    emergency_bucket: str = EMERGENCY_BUCKET
    migrate_on_start: bool = False
    # argon2id cost (OWASP minimum by default); environment "test" uses a cheaper profile.
    password_hash_time_cost: int = 2
    password_hash_memory_kib: int = 19456
    password_hash_parallelism: int = 1

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> GatewaySettings:
        # The development defaults are not in the kit's placeholder list, so refuse them here.
        if self.environment == "production":
            pepper = self.token_pepper.get_secret_value()
            if pepper.startswith("dev-") or len(pepper) < 32:
                raise ValueError("GATEWAY_TOKEN_PEPPER must be a random secret of at least "
                                 "32 characters in production")
            for key in (self.mfa_encryption_key, *self.mfa_previous_keys):
                value = key.get_secret_value()
                if value.startswith("dev-") or len(value) < 32:
                    raise ValueError("GATEWAY_MFA_ENCRYPTION_KEY (and every previous key) must "
                                     "be a random secret of at least 32 characters in "
                                     "production")
        return self

    def mfa_keys(self) -> list[str]:
        """Every MFA key, newest (the one that encrypts) first."""
        return [k.get_secret_value() for k in (self.mfa_encryption_key, *self.mfa_previous_keys)]

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = "sqlite+aiosqlite:///./data/gateway.db"
    http_port: int = 8000
    # Pepper mixed into token hashes; placeholder refused outside development/test.
    token_pepper: SecretStr = SecretStr("dev-pepper-not-for-production")
    # Encrypts TOTP secrets at rest (any high-entropy string; a Fernet key is derived from it).
    mfa_encryption_key: SecretStr = SecretStr("dev-mfa-key-not-for-production")
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
    # Security layer (login throttling, MFA, login links, emergency mode, web UI).
    version: str = "0.1.0"
    public_url: str = "http://127.0.0.1:8000"
    login_account_max_failures: int = 5
    login_address_max_failures: int = 20
    login_failure_window_s: int = 15 * 60
    login_backoff_base_s: int = 30
    login_backoff_max_s: int = 15 * 60
    mfa_max_failures: int = 5
    login_link_ttl_s: int = 24 * 3600
    emergency_retry_after_s: int = 120
    emergency_bucket: str = "gateway_emergency"
    migrate_on_start: bool = False
    # argon2id cost (OWASP minimum by default); environment "test" uses a cheaper profile.
    password_hash_time_cost: int = 2
    password_hash_memory_kib: int = 19456
    password_hash_parallelism: int = 1

    @model_validator(mode="after")
    def _refuse_weak_pepper(self) -> "GatewaySettings":
        # The development default is not in the kit's placeholder list, so refuse it here.
        if self.environment == "production":
            pepper = self.token_pepper.get_secret_value()
            if pepper.startswith("dev-") or len(pepper) < 32:
                raise ValueError("GATEWAY_TOKEN_PEPPER must be a random secret of at least "
                                 "32 characters in production")
            key = self.mfa_encryption_key.get_secret_value()
            if key.startswith("dev-") or len(key) < 32:
                raise ValueError("GATEWAY_MFA_ENCRYPTION_KEY must be a random secret of at least "
                                 "32 characters in production")
        return self

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = "sqlite+aiosqlite:///./data/gateway.db"
    http_port: int = 8000
    # Pepper mixed into token hashes; placeholder refused outside development/test.
    token_pepper: SecretStr = SecretStr("dev-pepper-not-for-production")
    session_ttl_s: int = 12 * 3600
    mfa_elevation_s: int = 300
    dev_quick_login: bool = False
    behind_tls: bool = False
    rpc_timeout_s: float = 10.0

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    service_name: str = "ledger"
    http_port: int = 8103
    # Worker share used until an admin sets a default of their own (basis points).
    default_share_bps: int = Field(5000, ge=0, le=10_000)

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class SupportSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORT_", extra="ignore")

    service_name: str = "support"
    database_url: str = "sqlite+aiosqlite:///./data/support.db"
    http_port: int = 8105

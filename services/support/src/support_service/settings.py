from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class SupportSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORT_", extra="ignore")

    service_name: str = "support"
    http_port: int = 8105

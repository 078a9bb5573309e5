from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class SupportSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORT_", extra="ignore")

    service_name: str = "support"
    http_port: int = 8105

    # chat: at most chat_rate_max messages per user in any chat_rate_window_s seconds
    chat_rate_max: int = Field(5, ge=1, le=1000)
    chat_rate_window_s: float = Field(10.0, gt=0, le=3600)

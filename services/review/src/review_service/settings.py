from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ReviewSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REVIEW_", extra="ignore")

    service_name: str = "review"
    http_port: int = 8102
    lock_ttl_s: float = Field(600.0, gt=0, description="how long a review lock holds")
    auto_accept_sweep_s: float = Field(5.0, gt=0,
                                       description="how often overdue submissions are accepted")
    auto_accept_batch: int = Field(500, ge=1, description="submissions per sweeper statement")

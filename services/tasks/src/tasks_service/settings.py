from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TASKS_", extra="ignore")

    service_name: str = "tasks"
    http_port: int = 8101
    # How often the sweeper looks for ACTIVE assignments past their deadline.
    expire_sweep_interval_s: float = Field(5.0, gt=0)
    expire_batch_size: int = Field(500, ge=1)
    captcha_ttl_s: int = Field(300, ge=1)
    max_upload_rows: int = Field(100_000, ge=1)
    # How often the results job looks for pools whose aggregation is due.
    aggregate_interval_s: float = Field(5.0, gt=0)
    # How often the accepted durations pending are folded into the pools' pace histograms.
    pace_fold_interval_s: float = Field(5.0, gt=0)
    # A pool's aggregation is recomputed for new answers at most this often.
    aggregate_min_gap_s: float = Field(10.0, ge=0)

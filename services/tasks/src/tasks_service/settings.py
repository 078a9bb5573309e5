from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TASKS_", extra="ignore")

    service_name: str = "tasks"
    database_url: str = "sqlite+aiosqlite:///./data/tasks.db"
    http_port: int = 8101
    # How often the sweeper looks for ACTIVE assignments past their deadline.
    expire_sweep_interval_s: float = 5.0
    expire_batch_size: int = 500
    captcha_ttl_s: int = 300
    max_upload_rows: int = 100_000

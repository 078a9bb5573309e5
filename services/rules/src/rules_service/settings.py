from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class RulesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RULES_", extra="ignore")

    service_name: str = "rules"
    http_port: int = 8104
    # How often temporary restrictions are checked for their end.
    sweep_interval_s: float = 30.0
    # A backtest replays at most this many recorded facts (newest are dropped).
    backtest_max_facts: int = 500_000
    # Enabled rules are cached this long (a change through another replica shows
    # within it; one through this process at once).
    rules_cache_ttl_s: float = 1.0

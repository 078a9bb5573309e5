from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class SupportSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORT_", extra="ignore")

    # the generator is off without its URL, and then needs no key
    optional_secrets: ClassVar[frozenset[str]] = frozenset({"generator_api_key"})

    service_name: str = "support"
    http_port: int = 8105

    # chat: at most chat_rate_max messages per user in any chat_rate_window_s seconds
    chat_rate_max: int = Field(5, ge=1, le=1000)
    chat_rate_window_s: float = Field(10.0, gt=0, le=3600)
    # The assistant: below this confidence a question goes to a person (docs/decisions.md).
    assistant_threshold: float = Field(0.4, ge=0, le=1)
    # Optional generator behind an OpenAI-compatible endpoint (off while the URL is empty):
    # it may rephrase the retrieved article; the answer always keeps the citation.
    generator_url: str = ""
    generator_model: str = ""
    generator_api_key: SecretStr = SecretStr("")
    generator_timeout_s: float = Field(10.0, gt=0)
    # The public lead form, per client address over a sliding window.
    lead_window_s: int = Field(3600, ge=1)
    lead_captcha_after: int = Field(3, ge=0, description="posts before a captcha is needed")
    lead_max_posts: int = Field(10, ge=1, description="posts in a window, then refused")
    lead_captcha_ttl_s: int = Field(300, ge=1)
    # the key of the addresses' hashes (HMAC): a random secret in production
    lead_address_key: SecretStr = SecretStr("dev-lead-address-key-not-for-production")
    # Seals webhook signing secrets at rest (servicekit.secretbox); keys used before, newest
    # first (a JSON list), still open what they sealed: rotate by moving the key there.
    webhook_secret_key: SecretStr = SecretStr("dev-webhook-secret-key-not-for-production")
    webhook_previous_keys: list[SecretStr] = []

    @model_validator(mode="after")
    def _refuse_the_dev_keys(self) -> SupportSettings:
        if self.environment != "production":
            return self
        for name, keys in (("SUPPORT_LEAD_ADDRESS_KEY", [self.lead_address_key]),
                           ("SUPPORT_WEBHOOK_SECRET_KEY (and every previous key)",
                            [self.webhook_secret_key, *self.webhook_previous_keys])):
            for key in keys:
                value = key.get_secret_value()
                if value.startswith("dev-") or len(value) < 32:
                    raise ValueError(f"{name} must be a random secret of at least 32 "
                                     "characters in production")
        return self

    def webhook_keys(self) -> list[str]:
        """Every webhook key, newest (the one that seals) first."""
        return [k.get_secret_value()
                for k in (self.webhook_secret_key, *self.webhook_previous_keys)]


    # Webhooks: outbound deliveries with exponential backoff (base * 2^(attempt-1), capped)
    # until delivered or webhook_max_attempts attempts; a manual redeliver grants as many
    # again. Loopback, private and link-local targets are refused unless allowed (tests).
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_backoff_base_s: float = Field(5.0, gt=0, le=3600)
    webhook_backoff_max_s: float = Field(3600.0, gt=0, le=86400)
    webhook_sweep_s: float = Field(1.0, gt=0, le=300)
    webhook_batch: int = Field(50, ge=1, le=1000)

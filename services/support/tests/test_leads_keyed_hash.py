"""The lead form keeps a client's address only as a keyed hash: the same address and key give
the same value (the rate limit works), another key another value, and the value is not the
plain SHA-256 one could get by trying every IPv4 address. Production refuses the dev key."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from support_service.leads import address_hash
from support_service.settings import SupportSettings


def test_the_address_hash_is_keyed() -> None:
    a = address_hash("203.0.113.7", "k" * 32)
    assert a == address_hash("203.0.113.7", "k" * 32)
    assert a != address_hash("203.0.113.8", "k" * 32)
    assert a != address_hash("203.0.113.7", "j" * 32)
    assert a not in {hashlib.sha256(v.encode()).hexdigest()
                     for v in ("203.0.113.7", "lead-address:203.0.113.7")}


def test_production_refuses_the_development_key() -> None:
    with pytest.raises(ValidationError, match="SUPPORT_LEAD_ADDRESS_KEY"):
        SupportSettings(environment="production", database_url="postgresql://x/y",
                        nats_user="support", nats_password="p" * 32)
    with pytest.raises(ValidationError, match="SUPPORT_LEAD_ADDRESS_KEY"):
        SupportSettings(environment="production", database_url="postgresql://x/y",
                        nats_user="support", nats_password="p" * 32, lead_address_key="short")
    with pytest.raises(ValidationError, match="SUPPORT_WEBHOOK_SECRET_KEY"):
        SupportSettings(environment="production", database_url="postgresql://x/y",
                        nats_user="support", nats_password="p" * 32,
                        lead_address_key="0123456789abcdef" * 4)
    with pytest.raises(ValidationError, match="SUPPORT_WEBHOOK_SECRET_KEY"):
        SupportSettings(environment="production", database_url="postgresql://x/y",
                        nats_user="support", nats_password="p" * 32,
                        lead_address_key="0123456789abcdef" * 4,
                        webhook_secret_key="fedcba9876543210" * 4,
                        webhook_previous_keys=["dev-webhook-secret-key-not-for-production"])
    ok = SupportSettings(environment="production", database_url="postgresql://x/y",
                         nats_user="support", nats_password="p" * 32,
                         lead_address_key="0123456789abcdef" * 4,
                         webhook_secret_key="fedcba9876543210" * 4)
    assert len(ok.lead_address_key.get_secret_value()) == 64


def test_production_needs_no_generator_key_while_the_generator_is_off() -> None:
    s = SupportSettings(environment="production", database_url="postgresql://x/y",
                        nats_user="support", nats_password="p" * 32,
                        lead_address_key="0123456789abcdef" * 4,
                        webhook_secret_key="fedcba9876543210" * 4)
    assert s.generator_url == "" and s.generator_api_key.get_secret_value() == ""

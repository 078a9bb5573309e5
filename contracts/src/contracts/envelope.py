"""The one envelope every event on the bus travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Metadata around an event payload.

    ``event_id`` doubles as the JetStream ``Nats-Msg-Id`` (publisher dedup) and
    as the consumer inbox key (consumer dedup).
    """

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str | None = None
    causation_id: str | None = None
    producer: str
    data: dict[str, Any]


def new_envelope(
    event: BaseModel,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap an event model (registered in ``contracts.events``) in an envelope."""
    from contracts.events import spec_for_model

    spec = spec_for_model(type(event))  # type: ignore[arg-type]  # an Event subclass
    return Envelope(
        type=spec.type,
        schema_version=spec.version,
        producer=producer,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=event.model_dump(mode="json"),
    )

"""Contracts: the envelope, the registry, streams, and the checked-in AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from contracts.asyncapi import render
from contracts.envelope import Envelope, new_envelope
from contracts.events import ReviewAccepted, all_events, parse_event
from contracts.streams import STREAMS, _matches, stream_for_subject

ROOT = Path(__file__).resolve().parents[1]


def test_every_event_subject_is_captured_by_exactly_one_stream() -> None:
    for spec in all_events():
        owners = [s.name for s in STREAMS if any(_matches(spec.subject, p) for p in s.subjects)]
        assert owners == [stream_for_subject(spec.subject).name], spec.type
        assert spec.stream not in ("DLQ", "ADVISORIES")


def test_rpc_subjects_are_outside_every_stream() -> None:
    from contracts.rpc import all_rpcs

    for rpc in all_rpcs():
        assert not any(_matches(rpc.subject, p) for s in STREAMS for p in s.subjects), rpc.subject


def test_envelope_round_trip_keeps_type_version_and_payload() -> None:
    from datetime import UTC, datetime

    ev = ReviewAccepted(assignment_id="a", task_id="t", pool_id="p", project_id="pr",
                        worker_id="w", price_minor=100, currency="USD", decided_by="m",
                        decided_at=datetime.now(UTC))
    env = new_envelope(ev, producer="review", correlation_id="c1")
    back = Envelope.model_validate_json(env.model_dump_json())
    assert back.type == "review.accepted" and back.schema_version == 1
    assert back.event_id == env.event_id and back.correlation_id == "c1"
    assert parse_event(back.type, back.schema_version, back.data) == ev


def test_checked_in_asyncapi_document_is_current() -> None:
    checked_in = (ROOT / "docs" / "asyncapi.json").read_text()
    assert checked_in == render(), (
        "docs/asyncapi.json is stale: run `make asyncapi` and commit the result")

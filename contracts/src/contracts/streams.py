"""JetStream stream definitions, declared once for the whole bus."""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUBJECT_PREFIX = "dlq"
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    max_age_s: int = 14 * 24 * 3600
    duplicate_window_s: int = 120


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("TASK", ("task.>",), "tasks service events"),
    StreamSpec("REVIEW", ("review.>",), "review service events"),
    StreamSpec("LEDGER", ("ledger.>",), "ledger service events"),
    StreamSpec("RULES", ("rules.>",), "quality-control rule actions"),
    StreamSpec("SUPPORT", ("support.>",), "support service events"),
    StreamSpec("GATEWAY", ("gateway.>",), "gateway (accounts, emergency) events"),
    StreamSpec(
        "DLQ",
        (f"{DLQ_SUBJECT_PREFIX}.>",),
        "dead letters: messages a consumer could not process, with the reason",
        max_age_s=90 * 24 * 3600,
    ),
    StreamSpec(
        "ADVISORIES",
        (f"{MAX_DELIVERIES_ADVISORY}.>",),
        "JetStream MAX_DELIVERIES advisories, kept so a crash-looping consumer's "
        "messages reach the DLQ even while the consumer is down",
        max_age_s=7 * 24 * 3600,
    ),
)


def stream_for_subject(subject: str) -> StreamSpec:
    for spec in STREAMS:
        for pattern in spec.subjects:
            if _matches(subject, pattern):
                return spec
    raise KeyError(f"no stream captures subject {subject!r}")


def _matches(subject: str, pattern: str) -> bool:
    s, p = subject.split("."), pattern.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(s) == len(p)


def dlq_subject(service: str, consumer: str) -> str:
    return f"{DLQ_SUBJECT_PREFIX}.{service}.{consumer}"


# The gateway's emergency read-only switch (JetStream KV). The gateway writes it; every
# service watches it and pauses the background jobs that change state while it is on.
EMERGENCY_BUCKET = "gateway_emergency"
EMERGENCY_KEY = "state"

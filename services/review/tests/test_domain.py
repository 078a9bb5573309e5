"""Lock, refusal, auto-accept and statistics rules (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from review_service import domain
from review_service.domain import LockState
from servicekit.errors import ServiceError

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
EARLIER = NOW - timedelta(seconds=1)


def pending(holder: str | None = None, until: datetime | None = None) -> LockState:
    return LockState(status="pending", lock_holder=holder, lock_until=until)


def test_free_item_can_be_locked_by_anyone_and_extended_by_holder() -> None:
    assert domain.can_lock(pending(), "m1", NOW)
    assert domain.can_lock(pending("m1", LATER), "m1", NOW)
    assert not domain.can_lock(pending("m1", LATER), "m2", NOW)


def test_expired_lock_frees_the_item() -> None:
    assert domain.can_lock(pending("m1", EARLIER), "m2", NOW)
    assert domain.can_lock(pending("m1", NOW), "m2", NOW)  # deadline reached = expired
    assert domain.lock_refusal("a1", pending("m1", EARLIER), "m2", NOW) is None


def test_lock_refusal_names_holder_and_deadline() -> None:
    err = domain.lock_refusal("a1", pending("m1", LATER), "m2", NOW)
    assert isinstance(err, ServiceError)
    assert (err.code, err.status) == ("locked_by_other", 409)
    assert err.details == {"holder": "m1", "until": LATER.isoformat()}
    assert "m1" in err.message and LATER.isoformat() in err.message


def test_refusals_for_missing_and_decided_items() -> None:
    missing = domain.lock_refusal("a1", None, "m1", NOW)
    assert missing is not None and (missing.code, missing.status) == ("submission_not_found", 404)
    decided = LockState(status="accepted", lock_holder=None, lock_until=None, decided_at=NOW)
    for why in (domain.lock_refusal, domain.decision_refusal, domain.unlock_refusal):
        err = why("a1", decided, "m1", NOW)
        assert err is not None and (err.code, err.status) == ("already_decided", 409)
        assert err.details["status"] == "accepted"


def test_only_the_holder_of_a_live_lock_decides() -> None:
    assert domain.can_decide(pending("m1", LATER), "m1", NOW)
    assert domain.decision_refusal("a1", pending("m1", LATER), "m1", NOW) is None
    other = domain.decision_refusal("a1", pending("m1", LATER), "m2", NOW)
    assert other is not None and other.code == "locked_by_other"
    unlocked = domain.decision_refusal("a1", pending(), "m1", NOW)
    assert unlocked is not None and (unlocked.code, unlocked.status) == ("lock_required", 409)
    expired = domain.decision_refusal("a1", pending("m1", EARLIER), "m1", NOW)
    assert expired is not None and expired.code == "lock_required"
    assert "expired" in expired.message


def test_unlock_is_for_the_holder_and_harmless_on_a_free_item() -> None:
    assert domain.unlock_refusal("a1", pending("m1", LATER), "m1", NOW) is None
    assert domain.unlock_refusal("a1", pending(), "m2", NOW) is None
    err = domain.unlock_refusal("a1", pending("m1", LATER), "m2", NOW)
    assert err is not None and err.code == "locked_by_other"


def test_rejection_needs_a_real_comment() -> None:
    for bad in (None, "", "   \n"):
        with pytest.raises(ServiceError) as exc:
            domain.rejection_comment(bad)
        assert (exc.value.code, exc.value.status) == ("comment_required", 422)
    assert domain.rejection_comment("  blurry photo ") == "blurry photo"
    assert domain.clean_comment("  ") is None


def test_auto_accept_deadline() -> None:
    assert domain.auto_accept_at(NOW, "manual", 60) == NOW + timedelta(seconds=60)
    assert domain.auto_accept_at(NOW, "manual", None) is None
    assert domain.auto_accept_at(NOW, "auto", 60) is None
    naive = NOW.replace(tzinfo=None)
    assert domain.auto_accept_at(naive, "manual", 0) == NOW


def test_acceptance_rate() -> None:
    assert domain.acceptance_rate(0, 0) is None
    assert domain.acceptance_rate(3, 1) == 0.75
    assert domain.acceptance_rate(2, 1) == 0.6667


def test_hourly_buckets_cover_24_hours_ending_now() -> None:
    buckets = domain.hourly_buckets(
        {NOW.replace(minute=0): 5, NOW - timedelta(hours=3): 2,
         (NOW - timedelta(hours=3, minutes=10)).replace(tzinfo=None): 1,
         NOW - timedelta(hours=30): 9},
        NOW)
    assert len(buckets) == 24
    assert buckets[-1] == (datetime(2026, 11, 22, 12, tzinfo=UTC), 5)
    assert buckets[0][0] == datetime(2026, 11, 21, 13, tzinfo=UTC)
    assert dict(buckets)[datetime(2026, 11, 22, 9, tzinfo=UTC)] == 3
    assert sum(n for _, n in buckets) == 8  # the 30-hour-old decisions fall outside

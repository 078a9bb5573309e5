"""The fair-pay estimate: the measured median after the minimum count, the declared
figure before, rounding down to a minor unit, and when the floor refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.routes.fair_pay import (
    MIN_MEASURED,
    Estimate,
    estimate,
    hourly_minor,
    pool_estimate,
    warning_of,
)


def test_hourly_is_the_credit_times_tasks_per_hour_rounded_down() -> None:
    assert hourly_minor(70, 60) == 4200              # 70 x 60 tasks
    assert hourly_minor(70, 7) == 36000
    assert hourly_minor(100, 7) == 51428             # 51428.57 -> 51428
    assert hourly_minor(1, 3601) == 0                # less than a minor unit an hour
    assert hourly_minor(233, 20.5) == 40917          # 233 x 3600 / 20.5 = 40917.07
    with pytest.raises(ValueError):
        hourly_minor(1, 0)


def test_the_declared_figure_until_the_minimum_count_then_the_median() -> None:
    common = {"price_minor": 100, "credit_minor": 70, "median_seconds": 30.0,
              "expected_seconds": 60}
    before = estimate(accepted_timed=MIN_MEASURED - 1, **common)
    assert before == Estimate("declared", 60.0, 4200)
    after = estimate(accepted_timed=MIN_MEASURED, **common)
    assert after == Estimate("measured", 30.0, 8400)
    assert estimate(accepted_timed=3, min_measured=3, **common).source == "measured"


def test_without_a_declared_figure_the_estimate_is_unknown_until_measured() -> None:
    assert estimate(price_minor=100, credit_minor=70, accepted_timed=2, median_seconds=9.0,
                    expected_seconds=None) == Estimate("unknown", None, None)


def test_an_unpaid_pool_has_no_estimate_and_no_floor() -> None:
    est = estimate(price_minor=0, credit_minor=0, accepted_timed=50, median_seconds=9.0,
                   expected_seconds=10)
    assert est == Estimate("unpaid", None, None)
    assert warning_of(est, 10_000) is None


def test_the_floor_warns_below_it_and_when_unknown_and_is_off_without_one() -> None:
    at = Estimate("declared", 60.0, 4200)
    assert warning_of(at, 4200) is None              # at the floor: opens
    assert warning_of(at, 4201) == "below_fair_pay_floor"
    assert warning_of(Estimate("unknown", None, None), 1) == "fair_pay_unknown"
    assert warning_of(Estimate("unknown", None, None), None) is None
    assert warning_of(at, None) is None


def test_a_sandbox_pool_is_unpaid_whatever_its_price() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    pool = tasks_rpc.AdminPool(
        pool_id="p1", project_id="pr1", name="try", overlap=1, assignment_timeout_s=600,
        auto_accept_after_s=None, review_mode="manual", captcha_frequency="none",
        skill_filters=[], priority=0, expected_seconds_per_task=60, status="open",
        created_at=now, updated_at=now, price_minor=100, currency="RUB")
    shares = ledger_rpc.Shares(default=ledger_rpc.ShareView(
        pool_id=None, share="0.5", share_bps=5000, source="built_in"), pools=[])
    _, real = pool_estimate(pool, None, shares)
    assert real == Estimate("declared", 60.0, 3000)
    _, tried = pool_estimate(pool.model_copy(update={"sandbox": True}), None, shares)
    assert tried == Estimate("unpaid", None, None) and warning_of(tried, 10**6) is None

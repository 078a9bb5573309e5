"""Pure ledger rules: splitting a price, parsing a share, balanced legs."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from ledger_service.domain import (
    LedgerRuleError,
    Leg,
    ShareSetting,
    account_for_system,
    account_for_worker,
    assignment_credit_legs,
    balanced_legs,
    bonus_credit_legs,
    check_currency,
    effective_share,
    format_share,
    parse_share,
    payout_legs,
    split_price,
)


def test_split_parts_always_sum_to_the_price() -> None:
    rng = random.Random(7)
    prices = [0, 1, 2, 3, 7, 99, 100, 101, 999, 10_000, 123_457, 10**12 + 3]
    prices += [rng.randrange(0, 10**9) for _ in range(200)]
    shares = [0, 1, 3333, 4999, 5000, 5001, 6667, 9999, 10_000]
    shares += [rng.randrange(0, 10_001) for _ in range(50)]
    for price in prices:
        for bps in shares:
            worker, platform = split_price(price, bps)
            assert worker + platform == price
            assert worker == price * bps // 10_000
            assert 0 <= worker <= price and 0 <= platform <= price


def test_split_examples_and_refusals() -> None:
    assert split_price(999, 7000) == (699, 300)
    assert split_price(101, 5000) == (50, 51)  # the worker part rounds down
    assert split_price(100, 10_000) == (100, 0)
    for bad_price in (-1, 1.5, True):
        with pytest.raises(LedgerRuleError):
            split_price(bad_price, 5000)  # type: ignore[arg-type]
    for bad_bps in (-1, 10_001, 0.5):
        with pytest.raises(LedgerRuleError):
            split_price(100, bad_bps)  # type: ignore[arg-type]


@pytest.mark.parametrize("value, bps", [
    (0.7, 7000), ("0.7", 7000), (0, 0), (1, 10_000), ("1", 10_000), ("1.0000", 10_000),
    (0.0001, 1), ("0.0001", 1), (0.1234, 1234), ("0.5", 5000), (" 0.25 ", 2500),
    (0.3, 3000), (0.29, 2900), (0.57, 5700), (Decimal("0.65"), 6500), (1.0, 10_000),
])
def test_parse_share_exact_basis_points(value, bps) -> None:
    assert parse_share(value) == bps


@pytest.mark.parametrize("value, code", [
    (1.5, "share_out_of_range"), ("-0.1", "share_out_of_range"), (-0.0001, "share_out_of_range"),
    ("1.0001", "share_out_of_range"), (2, "share_out_of_range"),
    (0.12345, "share_too_precise"), ("0.33333", "share_too_precise"),
    ("0.00005", "share_too_precise"), (1e-05, "share_too_precise"),
    ("abc", "invalid_share"), ("", "invalid_share"), ("70%", "invalid_share"),
    (float("nan"), "invalid_share"), (float("inf"), "invalid_share"), ("NaN", "invalid_share"),
    (True, "invalid_share"), (None, "invalid_share"), ([0.5], "invalid_share"),
])
def test_parse_share_refuses_clearly(value, code) -> None:
    with pytest.raises(LedgerRuleError) as err:
        parse_share(value)
    assert err.value.code == code
    assert err.value.message


def test_format_share_round_trips_every_basis_point() -> None:
    for bps in range(10_001):
        assert parse_share(format_share(bps)) == bps
    assert format_share(5000) == "0.5"
    assert format_share(10_000) == "1"
    assert format_share(0) == "0"
    assert format_share(125) == "0.0125"


def test_credit_legs_balance_and_pay_the_worker_share() -> None:
    legs, worker = assignment_credit_legs(worker_id="w1", currency="RUB", price_minor=1001,
                                          share_bps=6000)
    assert worker == 600
    assert sum(leg.amount_minor for leg in legs) == 0
    by_kind = {leg.account.kind: leg.amount_minor for leg in legs}
    assert by_kind == {"requester_clearing": -1001, "worker_available": 600,
                       "platform_revenue": 401}
    # a zero share leaves no zero leg behind
    legs, worker = assignment_credit_legs(worker_id="w1", currency="RUB", price_minor=10,
                                          share_bps=0)
    assert worker == 0 and {leg.account.kind for leg in legs} == {"requester_clearing",
                                                                  "platform_revenue"}
    bonus = bonus_credit_legs(worker_id="w1", currency="RUB", amount_minor=50)
    assert sum(leg.amount_minor for leg in bonus) == 0
    with pytest.raises(LedgerRuleError):
        bonus_credit_legs(worker_id="w1", currency="RUB", amount_minor=0)


def test_payout_steps_move_between_the_workers_accounts() -> None:
    for step, src, dst in (("hold", "worker_available", "worker_hold"),
                           ("pay", "worker_hold", "worker_paid"),
                           ("release", "worker_hold", "worker_available")):
        legs = payout_legs(worker_id="w", currency="USD", amount_minor=30, step=step)
        assert {leg.account.kind: leg.amount_minor for leg in legs} == {src: -30, dst: 30}


def test_unbalanced_or_mixed_legs_are_refused() -> None:
    a = account_for_worker("w", "RUB", "worker_available")
    p = account_for_system("platform_revenue", "RUB")
    u = account_for_system("platform_revenue", "USD")
    with pytest.raises(LedgerRuleError) as err:
        balanced_legs([Leg(a, 10), Leg(p, -9)])
    assert err.value.code == "unbalanced"
    with pytest.raises(LedgerRuleError) as err:
        balanced_legs([Leg(a, 10), Leg(u, -10)])
    assert err.value.code == "mixed_currency"
    with pytest.raises(LedgerRuleError):
        account_for_worker("w", "rub", "worker_available")
    assert balanced_legs([Leg(a, 0), Leg(p, 0)]) == []


def test_the_pools_share_else_the_default_else_the_built_in_one() -> None:
    pool, default = ShareSetting(7000, "pool"), ShareSetting(2500, "default")
    assert effective_share(pool, default, 5000) is pool
    assert effective_share(None, default, 5000) is default
    assert effective_share(None, None, 5000) == ShareSetting(5000, "built_in")
    with pytest.raises(LedgerRuleError):
        effective_share(None, None, 10_001)


def test_only_the_currencies_the_ledger_books() -> None:
    assert check_currency("JPY") == "JPY"
    for bad in ("XXX", "rub", "", "RUBB"):
        with pytest.raises(LedgerRuleError) as err:
            check_currency(bad)
        assert err.value.code == "invalid_currency"

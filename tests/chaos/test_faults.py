"""The short fault suite (issue 11 item 8): lifecycles through the API while the ledger,
review, tasks, nats-server and PostgreSQL are each killed once (``kill -9``; PostgreSQL an
immediate shutdown) and started again; then no money is lost or doubled. ``make chaos`` runs
the long version (bench/chaos.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos


@pytest.fixture
def stack(tmp_path: Path):
    st = chaos.start_stack(tmp_path / "stack")
    try:
        yield st
    finally:
        st.shutdown()


@pytest.mark.timeout(420)
async def test_money_survives_a_kill_of_each_process_under_load(stack) -> None:
    report = await chaos.run(stack, seconds=30, kills=len(chaos.TARGETS), seed=11,
                             workers=6, managers=3, settle_s=120)
    print(report)
    assert report["kills_by_target"] == dict.fromkeys(chaos.TARGETS, 1), report["kills"]
    assert report["died"] == [], report  # nothing else fell over
    # work was done across the faults, and all of it reached the ledger exactly once
    assert report["accepted"] >= 20, report
    assert report["accepted_by_clients"] <= report["accepted"], report
    assert report["lost"] == 0 and report["credited_not_accepted"] == 0, report
    assert report["double"] == 0 and report["credited"] == report["accepted"], report
    assert report["entry_sums"] and not any(report["entry_sums"].values()), report
    assert report["negative_balances"] == 0, report
    assert not any(report["outbox_unpublished"].values()), report
    # while a process is down the API says "try again" (503/504), never a bare 500
    assert not [k for k in report["http_errors"] if k.endswith(":500")], report["http_errors"]

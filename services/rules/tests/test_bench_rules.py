"""The benchmark runs the live evaluation path end to end (small sizes here)."""

from __future__ import annotations

import pytest

from rules_service import bench_rules


async def test_benchmark_runs_the_live_path_over_recorded_history(pg_server: str) -> None:
    out = await bench_rules.run(400, 5_000, batch=100, workers=200, admin_url=pg_server)
    assert out["events"] == 400 and out["history"] == 5_000 and out["rules"] == 20
    assert out["events_per_s"] > 0
    # the same seed gives the same firings: the path is deterministic per event stream
    again = await bench_rules.run(400, 5_000, batch=100, workers=200, admin_url=pg_server)
    assert again["firings_by_rule"] == out["firings_by_rule"]


async def test_histories_in_turns_do_the_same_work_as_one_stretch(pg_server: str) -> None:
    with pytest.raises(ValueError):
        await bench_rules.run_in_turns(400, [0, 5_000], [0, 1, 1], admin_url=pg_server)
    short, long = await bench_rules.run_in_turns(400, [1_000, 5_000], [0, 1, 1, 0], batch=100,
                                                 workers=200, admin_url=pg_server)
    assert (short["history"], long["history"]) == (1_000, 5_000)
    assert short["events"] == long["events"] == 400
    assert len(short["stretches_events_per_s"]) == len(long["stretches_events_per_s"]) == 2
    # two stretches of 200 events process what one stretch of 400 does, batch for batch
    alone = await bench_rules.run(400, 5_000, batch=100, workers=200, admin_url=pg_server)
    assert long["firings_by_rule"] == alone["firings_by_rule"]
    assert long["firings"] == alone["firings"] > 0

"""The benchmark runs the live evaluation path end to end (small sizes here)."""

from __future__ import annotations

from rules_service import bench_rules


async def test_benchmark_runs_the_live_path_over_recorded_history(pg_server: str) -> None:
    out = await bench_rules.run(400, 5_000, batch=100, workers=200, admin_url=pg_server)
    assert out["events"] == 400 and out["history"] == 5_000 and out["rules"] == 20
    assert out["events_per_s"] > 0
    # the same seed gives the same firings: the path is deterministic per event stream
    again = await bench_rules.run(400, 5_000, batch=100, workers=200, admin_url=pg_server)
    assert again["firings_by_rule"] == out["firings_by_rule"]

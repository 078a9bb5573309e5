"""The fault suite: full lifecycles through the HTTP API while processes are killed.

    python -m bench.chaos [--seconds 240] [--kills 40] [--seed 7] [--cluster]   (make chaos)

A real stack (launcher.Stack: its own PostgreSQL from the wheel, nats-server with a user per
process, every service and the gateway as processes) serves workers who take and submit and
managers who lock and accept, as the bench does. Meanwhile, at random moments (seeded), one
process at a time gets ``kill -9`` and is started again: the ledger, review, tasks,
nats-server, and PostgreSQL (an immediate shutdown: the server crashes as on power loss and
replays its WAL at the next start). When the load stops and everything settles, the
invariants of the money are checked from the databases themselves:

* every submission review accepted is credited exactly once, and nothing else is credited
  (accepted == credited, 0 lost, 0 double);
* the ledger's entries sum to zero per currency, no balance is negative;
* every outbox is empty (each committed event was published).

With ``--cluster`` the bus is a 3-node JetStream cluster on loopback (R3 streams,
``sync_interval: always``) and the nats-server target becomes the node that currently leads
the REVIEW, LEDGER or TASK stream (found by asking the cluster before each kill).

The short version runs in ``make test`` (tests/chaos/test_faults.py, one kill of each
target on one server); ``make chaos`` runs the long one twice, on one server and on the
cluster, and prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.lifecycle import drive, setup
from launcher.stack import SERVICE_NAMES, Stack, free_ports

TARGETS = ("ledger", "review", "tasks", "nats-server", "postgres")
# on a 3-node cluster: the node leading a money stream's replicas instead of the one server
CLUSTER_TARGETS = ("ledger", "review", "tasks", "stream-leader", "postgres")
LEADER_STREAMS = ("REVIEW", "LEDGER", "TASK")
OUTBOX_SERVICES = ("tasks", "review", "ledger", "rules", "support", "gateway")


@dataclass
class Faults:
    """Kills one target at a time at seeded random moments, restarting each."""

    stack: Stack
    targets: tuple[str, ...]
    kills: int
    seconds: float
    seed: int
    done: list[dict[str, Any]] = field(default_factory=list)

    async def run(self) -> None:
        rnd = random.Random(self.seed)
        # one kill every (seconds / kills) on average, the order shuffled per round so each
        # target is hit about as often as the others
        order: list[str] = []
        while len(order) < self.kills:
            rnd_round = list(self.targets)
            rnd.shuffle(rnd_round)
            order += rnd_round
        gap = self.seconds / (self.kills + 1)
        for i, target in enumerate(order[:self.kills]):
            await asyncio.sleep(gap * rnd.uniform(0.5, 1.5) * 0.7)
            down_s = rnd.uniform(0.2, 1.5)
            t0 = time.monotonic()
            kill: dict[str, Any] = {"target": target}
            name = target
            election = None
            if target == "stream-leader":
                kill["stream"] = LEADER_STREAMS[i % len(LEADER_STREAMS)]
                name = kill["node"] = await self.leader_of(kill["stream"])
            kill["at"] = time.time()  # wall clock: compared with the ledger's created_at
            self.stack.kill(name)
            if target == "stream-leader":
                election = asyncio.create_task(self.election(kill["stream"], name, t0))
            await asyncio.sleep(down_s)
            # spawned from this (the stack's) thread, then waited for from another
            self.stack.restart(name, wait=False)
            await asyncio.to_thread(self.stack.wait_ready, name)
            kill["down_s"] = round(time.monotonic() - t0, 2)
            if election is not None:
                kill["election_s"] = await election
            self.done.append(kill)

    async def election(self, stream: str, old: str, t0: float,
                       limit_s: float = 30.0) -> float | None:
        """Seconds from the kill until the cluster names a leader for ``stream`` again
        (asked every 50 ms through the nodes still up; the old node, restarted, may win)."""
        import nats

        urls = self.stack.nats_url.split(",")
        nc = await nats.connect(urls, user="ops", password=self.stack.nats_passwords["ops"],
                                max_reconnect_attempts=-1, reconnect_time_wait=0.05)
        try:
            js = nc.jetstream(timeout=0.5)
            while time.monotonic() - t0 < limit_s:
                try:
                    info = await js.stream_info(stream)
                    leader = info.cluster.leader if info.cluster else None
                    # right after the kill the survivors may still report the dead node
                    if leader and (leader != old or time.monotonic() - t0 > 5.0):
                        return round(time.monotonic() - t0, 2)
                except Exception:  # no leader yet, or this connection's node is the dead one
                    pass
                await asyncio.sleep(0.05)
            return None
        finally:
            await nc.close()

    async def leader_of(self, stream: str) -> str:
        """The node that leads the stream's replicas now (asked as the ops user)."""
        import nats

        nc = await nats.connect(self.stack.nats_url.split(","), user="ops",
                                password=self.stack.nats_passwords["ops"])
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader, f"{stream} has no leader"
        return str(info.cluster.leader)


async def _one(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def money_state(stack: Stack, pool_id: str) -> dict[str, Any]:
    """What the databases hold, after the faults (asyncpg: no service code involved)."""
    review = stack.database_url("review")
    ledger = stack.database_url("ledger")
    accepted = {r["assignment_id"] for r in await _one(
        review, "SELECT assignment_id FROM submissions WHERE pool_id = $1 AND status = "
                "'accepted'", pool_id)}
    credits = [r["assignment_id"] for r in await _one(
        ledger, "SELECT assignment_id FROM transfers WHERE pool_id = $1 AND assignment_id IS "
                "NOT NULL", pool_id)]
    sums = {r["currency"]: int(r["total"]) for r in await _one(
        ledger, "SELECT currency, SUM(amount_minor) AS total FROM entries GROUP BY currency")}
    negative = (await _one(ledger, "SELECT count(*) AS n FROM balances WHERE "
                                   "balance_minor < 0"))[0]["n"]
    outbox = {}
    for name in OUTBOX_SERVICES:
        rows = await _one(stack.database_url(name),
                          "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        outbox[name] = int(rows[0]["n"])
    credited = set(credits)
    return {"accepted": len(accepted), "credited": len(credited),
            "double": len(credits) - len(credited), "lost": len(accepted - credited),
            "credited_not_accepted": len(credited - accepted), "entry_sums": sums,
            "negative_balances": int(negative), "outbox_unpublished": outbox}


async def credit_times(stack: Stack, pool_id: str) -> list[float]:
    """When each credit of the pool was committed (the ledger's clock, epoch seconds)."""
    rows = await _one(stack.database_url("ledger"),
                      "SELECT extract(epoch FROM created_at) AS t FROM transfers "
                      "WHERE pool_id = $1 AND assignment_id IS NOT NULL ORDER BY created_at",
                      pool_id)
    return [float(r["t"]) for r in rows]


def pauses(kills: list[dict[str, Any]], times: list[float], window_s: float = 20.0,
           key: str = "pause_s") -> dict[str, Any]:
    """Per kill, the longest time without a credit that overlaps the ``window_s`` after it
    (or the time until the next kill);
    for a stream-leader kill also that pause minus the election (the cost the services add
    to the election itself: the target is at most one second)."""
    out = []
    for i, k in enumerate(kills):
        at = k["at"]
        # up to the next kill: its pause is its own
        end = min(at + window_s, kills[i + 1]["at"]) if i + 1 < len(kills) else at + window_s
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)
                if b > at and a < end]
        pause = round(max(gaps), 2) if gaps else None
        row = {"target": k["target"], "pause_s": pause}
        if k.get("election_s") is not None and pause is not None:
            row["election_s"] = k["election_s"]
            row["overhead_s"] = round(pause - k["election_s"], 2)
        k[key] = pause
        out.append(row)
    leader = [r for r in out if "overhead_s" in r]
    return {"max_pause_s": max((r["pause_s"] for r in out if r["pause_s"] is not None),
                               default=None),
            "leader_kills": len(leader),
            "max_election_s": max((r["election_s"] for r in leader), default=None),
            "max_overhead_s": max((r["overhead_s"] for r in leader), default=None)}


def settled(state: dict[str, Any]) -> bool:
    return (state["lost"] == 0 and state["credited_not_accepted"] == 0
            and not any(state["outbox_unpublished"].values()))


async def run(stack: Stack, *, seconds: float, kills: int, seed: int,
              targets: tuple[str, ...] = TARGETS, workers: int = 8, managers: int = 4,
              settle_s: float = 180.0) -> dict[str, Any]:
    password = stack.wait_bootstrap_password(10)
    assert password, "a fresh stack prints the bootstrap admin password"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as c:
        ctx = await setup(c, password, tasks=int(seconds * 80) + 500, workers=workers,
                          managers=managers)
    faults = Faults(stack, targets, kills, seconds, seed)
    seen: list[float] = []  # when each ledger.credited event reached the load's client
    auth = ({"user": "ops", "password": stack.nats_passwords["ops"]}
            if stack.nats_passwords else None)
    load, _ = await asyncio.gather(
        drive(stack.gateway_url, stack.nats_url, ctx, seconds=seconds, nats_auth=auth,
              seen_credits=seen),
        faults.run())
    died = stack.dead()  # a process that exited without being killed by the suite
    t0 = time.monotonic()
    state = await money_state(stack, ctx["pool_id"])
    while not settled(state) and time.monotonic() - t0 < settle_s:
        await asyncio.sleep(1.0)
        state = await money_state(stack, ctx["pool_id"])
    return {"seconds": seconds, "seed": seed, "kills": faults.done,
            "kills_by_target": {t: sum(1 for k in faults.done if k["target"] == t)
                                for t in targets},
            "settled_after_s": round(time.monotonic() - t0, 1),
            "accepted_by_clients": load["accepted"],
            "max_credit_gap_s": load["max_credit_gap_s"],
            # the pause in money (credits committed) and in the bus (credit events seen)
            "failover": pauses(faults.done, await credit_times(stack, ctx["pool_id"])),
            "failover_events": pauses(faults.done, sorted(seen), key="event_pause_s"),
            "http_errors": load["errors"], "died": died, **state}


def start_stack(data: Path, *, nats_nodes: int = 1) -> Stack:
    nats_port, pg_port, *service_ports = free_ports(len(SERVICE_NAMES) + 2)
    stack = Stack(data_dir=data, nats_port=nats_port, pg_port=pg_port,
                  ports=dict(zip(SERVICE_NAMES, service_ports, strict=True)),
                  environment="development", echo=False, nats_nodes=nats_nodes,
                  extra_env={"GATEWAY_DEV_QUICK_LOGIN": "false"})
    stack.start()
    return stack


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chaos")
    ap.add_argument("--seconds", type=float, default=240.0)
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cluster", action="store_true",
                    help="a 3-node JetStream cluster (R3, fsync always); kills hit the node "
                         "leading the REVIEW, LEDGER or TASK stream instead of the one server")
    ap.add_argument("--targets", help="comma list of targets (default: all of the mode's: "
                                      f"{','.join(TARGETS)} or {','.join(CLUSTER_TARGETS)})")
    args = ap.parse_args(argv)
    targets = CLUSTER_TARGETS if args.cluster else TARGETS
    if args.targets:
        chosen = tuple(t.strip() for t in args.targets.split(",") if t.strip())
        unknown = set(chosen) - set(targets)
        if unknown or not chosen:
            ap.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(targets)}")
        targets = chosen
    with tempfile.TemporaryDirectory(prefix="mte-chaos-") as tmp:
        stack = start_stack(Path(tmp), nats_nodes=3 if args.cluster else 1)
        try:
            report = asyncio.run(run(stack, seconds=args.seconds, kills=args.kills,
                                     seed=args.seed, targets=targets))
        finally:
            stack.shutdown()
    print(json.dumps(report, indent=1))
    ok = (settled(report) and report["double"] == 0 and report["negative_balances"] == 0
          and not any(report["entry_sums"].values()) and not report["died"])
    print("invariants hold" if ok else "INVARIANTS BROKEN", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

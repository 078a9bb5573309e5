"""The aggregation of one pool, as a short-lived process: ``python -m
tasks_service.aggregate_job POOL_ID METHOD`` with the database URL in ``TASKS_DATABASE_URL``.

It reads (never writes) the pool's submitted and accepted answers, golden tasks, and which
tasks need no more answers (``final``: accepted answers reached the task's overlap, read in
the same snapshot as the answers), codes them as integers, aggregates each output field
(:mod:`tasks_service.aggregation`, numpy) and prints one JSON line per task and field, then a
last line ``{"done": true, ...}``. The
service reads the lines and writes them through its unit of work (:mod:`tasks_service.results`).

numpy and the answer arrays live only here, so the service process stays small; this
process is gone when the pool is done (decision 33 has its time and memory figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tasks_service.aggregation import Coded, aggregate


class _Codes:
    """Values to dense integer codes and back."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.values: list[Any] = []

    def code(self, value: Any) -> int:
        i = self.index.get(value)
        if i is None:
            i = self.index[value] = len(self.values)
            self.values.append(value)
        return i


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


class PoolAnswers:
    """A pool's answers coded per output field, fed one answer at a time."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.tasks = _Codes()
        self.workers = _Codes()
        self.labels = {f: _Codes() for f in fields}
        self.cols = {f: (array("i"), array("i"), array("i")) for f in fields}
        self.gold: dict[str, dict[int, int]] = {f: {} for f in fields}
        self.final = bytearray()  # by task code: 1 when the task needs no more answers
        self.n_answers = 0

    def add(self, task_id: str, worker_id: str, answers: dict[str, Any]) -> None:
        t = self.tasks.code(task_id)
        w = self.workers.code(worker_id)
        self.n_answers += 1
        for f in self.fields:
            v = answers.get(f)
            if v is None or v == "":
                continue
            ts, ws, ls = self.cols[f]
            ts.append(t)
            ws.append(w)
            ls.append(self.labels[f].code(_key(v)))

    def add_gold(self, task_id: str, known: dict[str, Any]) -> None:
        t = self.tasks.code(task_id)
        for f, v in known.items():
            if f in self.gold and v is not None:
                self.gold[f][t] = self.labels[f].code(_key(v))

    def mark_final(self, task_id: str) -> None:
        """The task needs no more answers (ignored for a task without answers)."""
        t = self.tasks.index.get(task_id)
        if t is None:
            return
        if len(self.final) <= t:
            self.final.extend(bytes(len(self.tasks.values) - len(self.final)))
        self.final[t] = 1

    def results(self, method: str) -> Iterator[dict[str, Any]]:
        """One dict per task and field that has answers (or a known answer)."""
        for f in self.fields:
            ts, ws, ls = self.cols[f]
            n_labels = len(self.labels[f].values)
            if n_labels == 0:
                continue
            coded = Coded(np.frombuffer(ts, dtype=np.int32), np.frombuffer(ws, dtype=np.int32),
                          np.frombuffer(ls, dtype=np.int32), len(self.tasks.values),
                          max(len(self.workers.values), 1), n_labels, self.gold[f])
            agg = aggregate(method, coded)
            values = self.labels[f].values
            final = self.final
            for t in map(int, np.flatnonzero(agg.label >= 0)):
                yield {"task_id": self.tasks.values[t], "field": f,
                       "answer": json.loads(values[agg.label[t]]),
                       "confidence": round(float(agg.confidence[t]), 6),
                       "answers": int(agg.answers[t]),
                       "final": bool(t < len(final) and final[t])}


def run(method: str, fields: list[str], answers: Iterable[tuple[str, str, dict[str, Any]]],
        gold: Iterable[tuple[str, dict[str, Any]]],
        final: Iterable[str] = ()) -> tuple[PoolAnswers, Iterator[dict[str, Any]]]:
    pa = PoolAnswers(fields)
    for task_id, known in gold:
        pa.add_gold(task_id, known)
    for task_id, worker_id, ans in answers:
        pa.add(task_id, worker_id, ans)
    for task_id in final:
        pa.mark_final(task_id)
    return pa, pa.results(method)


def rss_mb() -> float:
    """The peak resident memory of this process, in MB: Linux's VmHWM (``ru_maxrss`` would
    include the forked parent's peak from before the exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _read_pool(url: str, pool_id: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]],
                                                      Any]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    spec = await conn.fetchval(
        "SELECT pr.output_spec FROM pools p JOIN projects pr ON pr.project_id = p.project_id "
        "WHERE p.pool_id = $1", pool_id)
    fields = [f["name"] for f in json.loads(spec)] if spec else []
    gold = [(r["task_id"], json.loads(r["control_answers"])) for r in await conn.fetch(
        "SELECT task_id, control_answers FROM tasks WHERE pool_id = $1 AND is_control "
        "AND control_answers IS NOT NULL", pool_id)]
    return fields, gold, conn


async def _main(pool_id: str, method: str) -> int:
    started = time.monotonic()
    url = os.environ["TASKS_DATABASE_URL"]
    fields, gold, conn = await _read_pool(url, pool_id)
    pa = PoolAnswers(fields)
    for task_id, known in gold:
        pa.add_gold(task_id, known)
    # one snapshot for the answers and the final tasks: a task is final only with the
    # answers that made it so (an acceptance committed in between is in neither)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for r in conn.cursor(
                "SELECT task_id, worker_id, answers FROM assignments WHERE pool_id = $1 "
                "AND status IN ('SUBMITTED', 'ACCEPTED') AND answers IS NOT NULL", pool_id,
                prefetch=5000):
            pa.add(r["task_id"], r["worker_id"], json.loads(r["answers"]))
        async for r in conn.cursor(
                "SELECT task_id FROM tasks WHERE pool_id = $1 AND NOT is_control "
                "AND accepted_count >= overlap", pool_id, prefetch=5000):
            pa.mark_final(r["task_id"])
    await conn.close()
    out = sys.stdout
    for row in pa.results(method):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.write(json.dumps({"done": True, "answers_used": pa.n_answers,
                          "seconds": round(time.monotonic() - started, 3),
                          "rss_mb": round(rss_mb(), 1)}) + "\n")
    out.flush()
    return 0


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tasks_service.aggregate_job POOL_ID METHOD")
    sys.exit(asyncio.run(_main(sys.argv[1], sys.argv[2])))


if __name__ == "__main__":
    main()

"""A 1M-answer pool aggregated end to end, as the tasks service does it: the job process
reads the answers from PostgreSQL, the service process writes the results through its unit
of work. Prints the wall time and the peak RSS of both processes. Every task has all its
answers accepted, so the run also records a ``task.result_ready`` per task (decision 40):
the worst case, every result final and new at once; ``--not-final`` leaves every task short of
its overlap (no events), for the difference.

    .venv/bin/python bench/aggregation_db.py [METHOD] [ANSWERS] [--not-final]

Starts its own PostgreSQL (the embedded one the tests use) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from servicekit.context import Context
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from servicekit.testing.pgserver import PgServer
from servicekit.uow import Database
from tasks_service import results
from tasks_service.db import outbox
from tasks_service.settings import TasksSettings
from tasks_service.store import TasksStore

ROOT = Path(__file__).resolve().parents[1]

# 3 labels; worker w has accuracy 0.95, 0.7 or 0.5 by w % 3; wrong answers uniform
_FILL = """
SELECT setseed(0.42);
INSERT INTO projects VALUES ('prj', 'bench', '', '[]',
  '[{"name": "label", "type": "string"}]', now(), now());
INSERT INTO pools (pool_id, project_id, name, price_minor, currency, overlap,
  assignment_timeout_s, review_mode, captcha_frequency, skill_filters, status, created_at,
  updated_at) VALUES ('pool', 'prj', 'bench', 0, 'RUB', 5, 600, 'auto', 'none', '[]', 'open',
  now(), now());
INSERT INTO tasks (task_id, pool_id, project_id, input, overlap, accepted_count, created_at,
  position)
  SELECT 't' || g, 'pool', 'prj', '{}', 5, {accepted}, now(), g
  FROM generate_series(0, {tasks} - 1) g;
INSERT INTO assignments (assignment_id, task_id, pool_id, project_id, worker_id, status,
  answers, taken_at, deadline_at, submitted_at)
  SELECT 'a' || t || '-' || j, 't' || t, 'pool', 'prj', 'w' || ((t * 7 + j * 613) % 3000),
    'ACCEPTED', json_build_object('label', 'l' || (CASE
      WHEN random() < (ARRAY[0.95, 0.7, 0.5])[((t * 7 + j * 613) % 3000) % 3 + 1]
      THEN t % 3 ELSE (t % 3 + 1 + floor(random() * 2)::int) % 3 END)),
    now(), now(), now()
  FROM generate_series(0, {tasks} - 1) t, generate_series(0, 4) j;
"""


async def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    method = args[0] if args else "dawid_skene"
    n = int(args[1]) if len(args) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        server = PgServer(Path(tmp))
        server.start()
        try:
            url = server.url().replace("postgresql://", "postgresql+asyncpg://")
            upgrade(ROOT / "services" / "tasks", url)
            engine = make_engine(url, statement_timeout_ms=0)
            async with engine.begin() as conn:
                raw = await conn.get_raw_connection()
                assert raw.driver_connection is not None
                accepted = "0" if "--not-final" in sys.argv else "5"
                await raw.driver_connection.execute(
                    _FILL.replace("{tasks}", str(n // 5)).replace("{accepted}", accepted))
            ctx: Context[TasksSettings, TasksStore] = Context(
                settings=TasksSettings(database_url=url),
                db=Database(engine, producer="tasks", outbox=outbox, store=TasksStore))
            async with ctx.uow() as uow:
                await uow.store.quality.request("pool", method, ctx.clock())
            started = time.monotonic()
            await results._run_job(ctx, "pool", method)
            took = time.monotonic() - started
            async with ctx.read() as r:
                state = await r.store.quality.state("pool", method)
                page, total = await r.store.quality.results("pool", method, 1, 0)
            me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            job = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            async with engine.connect() as conn:
                events = (await conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.subject == "task.result_ready"))).scalar()
            print(f"{method}: {state.answers_used if state else 0} answers -> {total} results, "
                  f"{events} result-ready events "
                  f"in {took:.1f}s (job's own {state.seconds if state else None}s); "
                  f"peak RSS: service process {me:.0f} MB, job process {job:.0f} MB")
            await engine.dispose()
        finally:
            server.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

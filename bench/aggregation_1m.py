"""Time and peak memory of aggregating a 1M-answer pool in the aggregation process.

    .venv/bin/python bench/aggregation_1m.py [METHOD] [ANSWERS]

Simulates 200,000 tasks x overlap 5 by 3,000 workers of three accuracies (0.95, 0.7, 0.5),
3 labels, 1% golden tasks; feeds them as the job does (string ids, answer dicts), aggregates
and consumes the result lines. Prints seconds, the peak RSS and the accuracy.
"""

from __future__ import annotations

import random
import sys
import time

from tasks_service.aggregate_job import rss_mb, run


def main() -> None:
    method = sys.argv[1] if len(sys.argv) > 1 else "dawid_skene"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    overlap, labels = 5, ["cat", "dog", "bird"]
    n_tasks = n // overlap
    rng = random.Random(1)
    acc = [0.95, 0.7, 0.5]
    workers = [f"w{i:05d}" for i in range(3000)]
    truth = [rng.randrange(3) for _ in range(n_tasks)]

    def answers():  # generated lazily, as rows stream from the database
        for t in range(n_tasks):
            for wi in rng.sample(range(len(workers)), overlap):
                ok = rng.random() < acc[wi % 3]
                lab = truth[t] if ok else (truth[t] + rng.randrange(1, 3)) % 3
                yield f"task-{t:07d}", workers[wi], {"label": labels[lab]}

    gold = [(f"task-{t:07d}", {"label": labels[truth[t]]}) for t in range(0, n_tasks, 100)]
    started = time.monotonic()
    pa, rows = run(method, ["label"], answers(), gold)
    loaded = time.monotonic() - started
    hit = total = 0
    for r in rows:
        total += 1
        hit += r["answer"] == labels[truth[int(r["task_id"][5:])]]
    took = time.monotonic() - started
    print(f"{method}: {pa.n_answers} answers, {total} results, load {loaded:.1f}s, "
          f"total {took:.1f}s, peak RSS {rss_mb():.0f} MB, accuracy {hit / total:.4f}")


if __name__ == "__main__":
    main()

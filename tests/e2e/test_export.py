"""A results file bigger than one bus message (1 MiB) downloads whole, in CSV and JSON."""

from __future__ import annotations

import csv
import io


async def test_results_file_over_one_mebibyte_downloads_whole(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    texts = [f"{i}:" + "x" * 200_000 for i in range(8)]  # 8 x 200 kB of input
    pool_id = await stack.pool(
        name="export", input_spec=[{"name": "text", "type": "string"}],
        output_spec=[{"name": "ok", "type": "boolean"}], rows=[{"text": t} for t in texts],
        price_minor=1, overlap=1)
    for _ in texts:  # one worker per task: each answer row carries its task's input
        w = await stack.user("worker")
        r = await c.post("/api/worker/tasks/take", headers=w.headers, json={"pool_id": pool_id})
        assert r.status_code == 200, r.text

    r = await c.get(f"/api/admin/pools/{pool_id}/results?format=csv", headers=admin)
    assert r.status_code == 200, r.text
    assert len(r.content) > 1024 * 1024 and r.headers["x-result-rows"] == "8"
    csv.field_size_limit(1_000_000)  # the reader's own default is 128 kB per field
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["INPUT:text"] for row in rows) == sorted(texts)
    r = await c.get(f"/api/admin/pools/{pool_id}/results?format=json", headers=admin)
    assert r.status_code == 200
    assert sorted(row["input"]["text"] for row in r.json()) == sorted(texts)

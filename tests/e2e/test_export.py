"""A results file bigger than one bus message (1 MiB) downloads whole, in CSV and JSON."""

from __future__ import annotations

import csv
import io
import uuid


async def test_results_file_over_one_mebibyte_downloads_whole(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    r = await c.post("/api/admin/projects", headers=admin, json={
        "name": f"export-{uuid.uuid4().hex[:6]}", "instructions": "Read it.",
        "input_spec": [{"name": "text", "type": "string"}],
        "output_spec": [{"name": "ok", "type": "boolean"}]})
    assert r.status_code == 201, r.text
    r = await c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": "big", "price_minor": 1, "overlap": 1})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    texts = [f"{i}:" + "x" * 200_000 for i in range(8)]  # 8 x 200 kB of input
    r = await c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
                     json=[{"text": t} for t in texts])
    assert r.status_code == 200 and r.json()["created"] == 8, r.text
    assert (await c.post(f"/api/admin/pools/{pool_id}/open", headers=admin)).status_code == 200
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

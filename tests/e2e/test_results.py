"""Results and quality through the API: Dawid-Skene against majority vote on simulated
workers of known accuracy (both in the export), an exam that sets a skill and opens a
filtered pool, a 4 real + 1 golden mixer over 100 takes, dynamic overlap, training hints."""

from __future__ import annotations

import csv
import io
import random

from servicekit.testing import eventually

LABELS = ["yes", "no"]
SPEC = {"input_spec": [{"name": "item", "type": "integer"}],
        "output_spec": [{"name": "label", "type": "string", "allowed_values": LABELS}]}


async def _workers(stack, n: int) -> list:
    """``n`` workers at the trusted level (no pause between takes)."""
    out = []
    for _ in range(n):
        w = await stack.user("worker")
        r = await stack.client.post(f"/api/admin/users/{w.user_id}/trust-level",
                                    headers=stack.admin.headers, json={"level": "trusted"})
        assert r.status_code == 200, r.text
        out.append(w)
    return out


async def _take(stack, worker, pool_id: str) -> dict | None:
    r = await stack.client.post("/api/worker/tasks/take", headers=worker.headers,
                                json={"pool_id": pool_id})
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()


async def _submit(stack, worker, assignment_id: str, label: str) -> None:
    r = await stack.client.post(f"/api/worker/assignments/{assignment_id}/submit",
                                headers=worker.headers, json={"answers": {"label": label}})
    assert r.status_code == 200, r.text


async def _results(stack, pool_id: str, method: str, tasks: int,
                   answers: int) -> dict[str, dict]:
    """The aggregated answers once the batch job computed them from all ``answers`` (a run
    that started while answers were still coming is followed by another)."""
    async def ready():
        r = await stack.client.get(f"/api/pools/{pool_id}/results?method={method}&limit=500",
                                   headers=stack.admin.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        state = body["state"]
        return body if state and state["computed_at"] and state["answers_used"] == answers \
            and body["total"] == tasks else None
    body = await eventually(ready, timeout_s=60)
    return {i["task_id"]: i for i in body["items"]}


async def test_dawid_skene_beats_majority_vote_and_both_are_exported(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    rng = random.Random(4)
    n_tasks = 100
    truth = [rng.randrange(2) for _ in range(n_tasks)]
    pool_id = await stack.pool(name="ds", **SPEC, rows=[{"item": i} for i in range(n_tasks)],
                               price_minor=0, overlap=5, review_mode="auto",
                               auto_accept_after_s=0)
    accuracy = [0.95] * 3 + [0.7] * 3 + [0.5] * 3
    workers = await _workers(stack, len(accuracy))
    item_of: dict[str, int] = {}
    open_ = set(range(len(workers)))
    while open_:  # rounds in a seeded order: each worker takes the oldest task it never had
        order = sorted(open_)
        rng.shuffle(order)
        for wi in order:
            a = await _take(stack, workers[wi], pool_id)
            if a is None:
                open_.discard(wi)
                continue
            item = a["input"]["item"]
            item_of[a["task_id"]] = item
            right = rng.random() < accuracy[wi]
            await _submit(stack, workers[wi], a["assignment_id"],
                          LABELS[truth[item] if right else 1 - truth[item]])
    assert len(item_of) == n_tasks

    r = await c.post(f"/api/admin/pools/{pool_id}/aggregations", headers=admin,
                     json={"method": "dawid_skene"})
    assert r.status_code == 200, r.text
    got = {m: await _results(stack, pool_id, m, n_tasks, n_tasks * 5)
           for m in ("majority_vote", "dawid_skene")}

    def acc(method: str) -> float:
        rows = got[method]
        return sum(rows[t]["answer"] == LABELS[truth[i]] for t, i in item_of.items()) / n_tasks
    mv, ds = acc("majority_vote"), acc("dawid_skene")
    print(f"accuracy against the known truth: majority vote {mv:.3f}, Dawid-Skene {ds:.3f}")
    assert ds > mv, (mv, ds)
    assert all(r["answers"] == 5 and 0.5 <= r["confidence"] <= 1
               for r in got["majority_vote"].values())

    r = await c.get(f"/api/admin/pools/{pool_id}/results?format=csv", headers=admin)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == n_tasks * 5
    for row in rows:
        t = row["ASSIGNMENT:task_id"]
        assert row["RESULT:majority_vote:label"] == got["majority_vote"][t]["answer"]
        assert row["RESULT:dawid_skene:label"] == got["dawid_skene"][t]["answer"]
        assert float(row["RESULT:dawid_skene:label:confidence"]) > 0
        assert row["ASSIGNMENT:golden"] == "false" and row["ASSIGNMENT:reviewer"] == "auto"
        assert row["ASSIGNMENT:decided"]


async def _quality(stack, pool_id: str, **settings) -> dict:
    r = await stack.client.put(f"/api/admin/pools/{pool_id}/quality",
                               headers=stack.admin.headers, json=settings)
    assert r.status_code == 200, r.text
    return r.json()


async def _visible(stack, worker, pool_id: str) -> bool:
    r = await stack.client.get("/api/worker/pools", headers=worker.headers)
    assert r.status_code == 200, r.text
    return any(p["pool_id"] == pool_id for p in r.json()["items"])


async def test_exam_sets_a_skill_that_opens_a_mixed_pool(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    exam = await stack.pool(name="exam", **SPEC, price_minor=0, review_mode="auto",
                            auto_accept_after_s=0,
                            rows=[{"item": i, "GOLDEN:label": LABELS[i % 2]} for i in range(5)])
    await _quality(stack, exam, kind="exam", exam_skill="labeller")
    rows = [{"item": i} for i in range(80)] + \
        [{"item": 1000 + i, "GOLDEN:label": "yes"} for i in range(20)]
    real = await stack.pool(name="mixed", **SPEC, price_minor=1, rows=rows,
                            skill_filters=[{"skill": "labeller", "op": "gte", "value": 80}])
    q = await _quality(stack, real, mixer_real=4, mixer_golden=1)
    assert (q["kind"], q["mixer_real"], q["mixer_golden"]) == ("real", 4, 1)
    [worker] = await _workers(stack, 1)

    assert not await _visible(stack, worker, real)
    r = await c.post("/api/worker/tasks/take", headers=worker.headers, json={"pool_id": real})
    assert r.status_code == 403 and r.json()["error"]["code"] == "skills_mismatch", r.text

    while (a := await _take(stack, worker, exam)) is not None:  # every answer right
        await _submit(stack, worker, a["assignment_id"], LABELS[a["input"]["item"] % 2])

    async def skilled():
        r = await c.get("/api/worker/profile", headers=worker.headers)
        return r.json()["skills"].get("labeller") == 100 or None
    await eventually(skilled)
    assert await _visible(stack, worker, real)

    for _ in range(100):  # take and give back: the mixer decides which kind comes next
        a = await _take(stack, worker, real)
        assert a is not None
        r = await c.post(f"/api/worker/assignments/{a['assignment_id']}/skip",
                         headers=worker.headers)
        assert r.status_code == 200, r.text
    r = await c.get(f"/api/admin/pools/{real}/results?format=json", headers=admin)
    assert r.status_code == 200, r.text
    mine = [row for row in r.json() if row["worker_id"] == worker.user_id]
    assert len(mine) == 100
    golden = [row for row in mine if row["golden"]]
    assert len(golden) == 20 and all(row["input"]["item"] >= 1000 for row in golden)
    # in take order every fifth take is the golden one
    mine.sort(key=lambda row: row["started_at"])
    assert [i for i, row in enumerate(mine) if row["golden"]] == list(range(4, 100, 5))


async def test_dynamic_overlap_stops_at_confidence_or_maximum(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    pool_id = await stack.pool(name="dyn", **SPEC, price_minor=0, overlap=3, review_mode="auto",
                               auto_accept_after_s=0, rows=[{"item": 0}, {"item": 1}])
    await _quality(stack, pool_id, dynamic_max_overlap=5, dynamic_confidence=0.8)
    workers = await _workers(stack, 6)

    async def settled():  # every answer accepted in the tasks service (overlap updated)
        r = await c.get(f"/api/pools/{pool_id}/stats", headers=admin)
        assert r.status_code == 200, r.text
        return r.json()["assignments_by_status"]["SUBMITTED"] == 0 or None

    taken: dict[int, int] = {0: 0, 1: 0}
    for wi, w in enumerate(workers):
        while (a := await _take(stack, w, pool_id)) is not None:
            item = a["input"]["item"]
            taken[item] += 1
            # item 0 is easy (all agree); item 1 is hard (answers alternate)
            await _submit(stack, w, a["assignment_id"], "yes" if item == 0 or wi % 2 == 0
                          else "no")
        await eventually(settled)
    r = await c.get(f"/api/pools/{pool_id}/tasks", headers=admin)
    overlap = {t["input"]["item"]: t["overlap"] for t in r.json()["items"]}
    assert overlap == {0: 3, 1: 5} and taken == {0: 3, 1: 5}


async def test_training_answers_get_the_known_answer_and_hint(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    training = await stack.pool(name="train", **SPEC, price_minor=0, review_mode="auto",
                                auto_accept_after_s=0,
                                rows=[{"item": 1, "GOLDEN:label": "yes"}])
    await _quality(stack, training, kind="training")
    r = await c.get(f"/api/pools/{training}/tasks", headers=admin)
    task_id = r.json()["items"][0]["task_id"]
    r = await c.put(f"/api/admin/pools/{training}/hints", headers=admin,
                    json={"hints": [{"task_id": task_id, "hint": "Look at the corner."}]})
    assert r.status_code == 200 and r.json()["saved"] == 1, r.text
    # the task list shows an admin the hint beside the known answer (the hint form's
    # starting value); a manager sees neither
    r = await c.get(f"/api/pools/{training}/tasks", headers=admin)
    assert r.json()["items"][0]["hint"] == "Look at the corner."
    manager = await stack.user("manager")
    r = await c.get(f"/api/pools/{training}/tasks", headers=manager.headers)
    assert r.json()["items"][0]["hint"] is None
    assert r.json()["items"][0]["control_answers"] is None
    [worker] = await _workers(stack, 1)
    a = await _take(stack, worker, training)
    r = await c.get(f"/api/worker/assignments/{a['assignment_id']}/feedback",
                    headers=worker.headers)
    assert r.status_code == 409  # not before the answer
    await _submit(stack, worker, a["assignment_id"], "no")
    r = await c.get(f"/api/worker/assignments/{a['assignment_id']}/feedback",
                    headers=worker.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"assignment_id": a["assignment_id"], "correct": False,
                        "known_answers": {"label": "yes"}, "hint": "Look at the corner."}
    # a paid pool cannot be a training pool
    paid = await stack.pool(name="paid", **SPEC, price_minor=5)
    r = await c.put(f"/api/admin/pools/{paid}/quality", headers=admin, json={"kind": "training"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "training_is_unpaid"

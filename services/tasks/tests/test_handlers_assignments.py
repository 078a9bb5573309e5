"""Assignment handlers on the fake store: take, submit, skip, report, the worker's views,
the sweeper, and the captcha a take may ask for."""

from __future__ import annotations

import base64
from datetime import timedelta

from contracts.rpc import tasks as rpc
from tasks_service import assignments, captcha, domain


async def take(call, worker: str = "w1", pool_id: str | None = None) -> rpc.TakeResult:
    return await call(rpc.TAKE, assignments.take,
                      rpc.Take(actor=call.worker(worker), pool_id=pool_id))


async def take_error(call, worker: str = "w1", pool_id: str | None = None):
    return await call.error(rpc.TAKE, assignments.take,
                            rpc.Take(actor=call.worker(worker), pool_id=pool_id))


def submit_req(call, a: rpc.Assignment, worker: str = "w1", **answers) -> rpc.Submit:
    return rpc.Submit(actor=call.worker(worker), assignment_id=a.assignment_id,
                      answers=answers or {"label": "cat"})


def restrict(store, rid: str, scope: str, **where) -> None:
    store.restrictions[rid] = {"restriction_id": rid, "worker_id": "w1", "scope": scope,
                               "pool_id": where.get("pool_id"),
                               "project_id": where.get("project_id"),
                               "until": where.get("until"), "lifted_at": None}


async def test_a_take_gives_the_oldest_free_task_and_records_it(call, store, clock) -> None:
    pool, task_ids = await call.pool(n=2, assignment_timeout_s=60, overlap=2)
    a = await take(call, pool_id=pool.pool_id)
    assert (a.task_id, a.status, a.pool_name, a.instructions) == (
        task_ids[0], "ACTIVE", "Cats pool", "# Is it a cat?")
    assert [f.name for f in a.output_spec] == ["label", "confidence"]
    assert a.deadline_at - a.taken_at == timedelta(seconds=60)
    assert store.tasks[task_ids[0]]["live_count"] == 1
    assert store.workers["w1"]["last_take_at"] == clock.now
    assert call.events[-1] == "task.taken"
    taken = call.payloads("task.taken")[0]
    assert (taken["assignment_id"], taken["worker_id"], taken["is_control"]) == (
        a.assignment_id, "w1", False)
    assert (await take(call, pool_id=pool.pool_id)).task_id == task_ids[1]
    none = await take_error(call, pool_id=pool.pool_id)  # never the same task twice
    assert (none.status, none.code) == (404, "no_tasks_available")
    assert (await take(call, "w2", pool.pool_id)).task_id == task_ids[0]
    assert (await call.error(rpc.TAKE, assignments.take, rpc.Take(
        actor=call.manager, pool_id=pool.pool_id))).status == 403


async def test_a_take_from_any_pool_prefers_the_highest_priority(call) -> None:
    low, _ = await call.pool(n=1, priority=1)
    high, _ = await call.pool(n=1, priority=5)
    first = await take(call)
    assert (first.pool_id, first.instructions) == (high.pool_id, "# Is it a cat?")
    assert (await take(call)).pool_id == low.pool_id
    assert (await take_error(call)).code == "no_tasks_available"


async def test_a_take_names_a_pool_that_gives_work(call) -> None:
    draft, _ = await call.pool(n=1, open_=False)
    assert (await take_error(call, pool_id="nope")).code == "pool_not_found"
    closed = await take_error(call, pool_id=draft.pool_id)
    assert (closed.status, closed.code) == (409, "pool_not_open")


async def test_trust_level_limits_are_explained(call, store, clock) -> None:
    pool, _ = await call.pool(n=5, assignment_timeout_s=600)
    store.limits["new"] = rpc.TrustLevelLimits(level="new", max_active=1, min_pause_s=30,
                                               assignment_timeout_s=60)
    a = await take(call, pool_id=pool.pool_id)
    assert a.deadline_at - a.taken_at == timedelta(seconds=60)  # the level's is shorter
    busy = await take_error(call, pool_id=pool.pool_id)
    assert (busy.status, busy.code, busy.details["limit"]) == (429, "take_limit", "max_active")
    assert busy.details["retry_after_s"] == 60
    await call(rpc.SKIP, assignments.skip,
               rpc.AssignmentRef(actor=call.worker(), assignment_id=a.assignment_id))
    clock.advance(10)
    pause = await take_error(call, pool_id=pool.pool_id)
    assert (pause.details["limit"], pause.details["retry_after_s"]) == ("min_pause", 20)
    store.limits.clear()
    early = await take_error(call, pool_id=pool.pool_id)
    assert (early.status, early.code) == (503, "not_ready")


async def test_restrictions_and_skill_filters_keep_a_worker_out(call, store, clock) -> None:
    pool, _ = await call.pool(n=2)
    other, _ = await call.pool(n=1, skill_filters=[rpc.SkillFilter(skill="en", value=50)])
    until = clock.now + timedelta(hours=1)
    restrict(store, "r1", "pool", pool_id=pool.pool_id, until=until)
    restrict(store, "r-old", "all", until=clock.now - timedelta(seconds=1))
    err = await take_error(call, pool_id=pool.pool_id)
    assert (err.status, err.code, err.details) == (403, "restricted", {
        "scope": "pool", "until": until.isoformat()})
    skills = await take_error(call, pool_id=other.pool_id)
    assert (skills.status, skills.code) == (403, "skills_mismatch")
    assert (await take_error(call)).code == "no_tasks_available"  # no pool left to use
    store.workers["w1"]["skills"] = {"en": 70}
    assert (await take(call)).pool_id == other.pool_id
    restrict(store, "r2", "project", project_id=pool.project_id)
    store.restrictions["r1"]["lifted_at"] = clock.now
    blocked = await take_error(call, pool_id=pool.pool_id)
    assert blocked.code == "restricted" and blocked.details["until"] is None


async def test_every_tenth_take_first_needs_a_captcha(call, store, clock) -> None:
    pool, task_ids = await call.pool(n=12, captcha_frequency="high")
    for _ in range(9):
        await take(call, pool_id=pool.pool_id)
    events = len(call.events)
    need = await take_error(call, pool_id=pool.pool_id)
    assert (need.status, need.code, need.details["expires_in_s"]) == (
        428, "captcha_required", 300)
    assert base64.b64decode(need.details["image_png_base64"]).startswith(b"\x89PNG")
    challenge = store.challenges[need.details["challenge_id"]]
    assert challenge.for_take == 10 and challenge.worker_id == "w1"
    # the refusal committed the challenge and gave the claimed slot back
    assert store.tasks[task_ids[9]]["live_count"] == 0 and len(call.events) == events

    def answer(cid: str, text: str, worker: str = "w1") -> rpc.CaptchaAnswer:
        return rpc.CaptchaAnswer(actor=call.worker(worker), challenge_id=cid, answer=text)

    wrong = await call(rpc.CAPTCHA_ANSWER, captcha.captcha_answer,
                       answer(challenge.challenge_id, "nope"))
    assert wrong.correct is False
    used = await call.error(rpc.CAPTCHA_ANSWER, captcha.captcha_answer,
                            answer(challenge.challenge_id, challenge.answer))
    assert (used.status, used.code) == (409, "challenge_used")
    again = await take_error(call, pool_id=pool.pool_id)
    second = store.challenges[again.details["challenge_id"]]
    assert second.challenge_id != challenge.challenge_id
    stranger = await call.error(rpc.CAPTCHA_ANSWER, captcha.captcha_answer,
                                answer(second.challenge_id, second.answer, "w2"))
    assert (stranger.status, stranger.code) == (404, "challenge_not_found")
    right = await call(rpc.CAPTCHA_ANSWER, captcha.captcha_answer,
                       answer(second.challenge_id, f" {second.answer.lower()} "))
    assert right.correct is True
    assert (await take(call, pool_id=pool.pool_id)).task_id == task_ids[9]
    assert (await take(call, pool_id=pool.pool_id)).task_id == task_ids[10]
    assert [e["correct"] for e in call.payloads("task.captcha_answered")] == [False, True]
    assert (await take(call, "w2", pool.pool_id)).worker_id == "w2"  # its own cadence


async def test_an_expired_challenge_is_refused(call, store, clock) -> None:
    pool, _ = await call.pool(n=20, captcha_frequency="high")
    for _ in range(9):
        await take(call, pool_id=pool.pool_id)
    need = await take_error(call, pool_id=pool.pool_id)
    clock.advance(301)
    expired = await call.error(rpc.CAPTCHA_ANSWER, captcha.captcha_answer, rpc.CaptchaAnswer(
        actor=call.worker(), challenge_id=need.details["challenge_id"], answer="x"))
    assert (expired.status, expired.code) == (409, "challenge_expired")


async def test_a_submit_checks_the_answers_and_records_them_without_money(call, store) -> None:
    rows = [{"image": "https://a.org/1.png"},
            {"input_values": {"image": "https://a.org/2.png"}, "known_solutions": {"label": "dog"}}]
    pool, _ = await call.pool(rows=rows, review_mode="auto", auto_accept_after_s=60)
    a = await take(call, pool_id=pool.pool_id)
    bad = await call.error(rpc.SUBMIT, assignments.submit,
                           submit_req(call, a, label="horse", confidence=101, zzz=1))
    assert (bad.status, bad.code) == (422, "invalid_answers")
    assert {d["field"] for d in bad.details} == {"label", "confidence", "zzz"}
    stranger = await call.error(rpc.SUBMIT, assignments.submit, submit_req(call, a, "w2"))
    assert (stranger.status, stranger.code) == (404, "assignment_not_found")
    req = submit_req(call, a, label="cat", confidence=90).model_copy(
        update={"comment": "ok", "proof_url": "https://p.org/1", "proof_text": "seen"})
    done = await call(rpc.SUBMIT, assignments.submit, req)
    assert (done.status, done.answers, done.proof) == (
        "SUBMITTED", {"label": "cat", "confidence": 90}, "https://p.org/1\nseen")
    assert store.assignments[a.assignment_id]["status"] == "SUBMITTED"
    again = await call.error(rpc.SUBMIT, assignments.submit, submit_req(call, a))
    assert (again.status, again.code, again.details) == (409, "assignment_not_active",
                                                         {"status": "SUBMITTED"})
    gold = await take(call, pool_id=pool.pool_id)
    await call(rpc.SUBMIT, assignments.submit, submit_req(call, gold, label="cat"))
    first, second = call.payloads("task.submitted")
    assert "price_minor" not in first and "currency" not in first
    assert (first["review_mode"], first["auto_accept_after_s"], first["overlap"]) == (
        "auto", 60, 1)
    assert (first["control_correct"], second["is_control"], second["control_correct"]) == (
        None, True, False)


async def test_a_late_submit_expires_the_assignment_then_refuses(call, store, clock) -> None:
    pool, task_ids = await call.pool(n=1, assignment_timeout_s=10)
    a = await take(call, pool_id=pool.pool_id)
    clock.advance(10)
    late = await call.error(rpc.SUBMIT, assignments.submit, submit_req(call, a))
    assert (late.status, late.code) == (409, "assignment_expired")
    assert call.events[-1] == "task.expired"  # committed with the refusal
    assert call.payloads("task.expired")[0]["assignment_id"] == a.assignment_id
    assert store.assignments[a.assignment_id]["status"] == "EXPIRED"
    assert store.tasks[task_ids[0]]["live_count"] == 0
    assert (await take(call, "w2", pool.pool_id)).task_id == task_ids[0]
    after = await call.error(rpc.SUBMIT, assignments.submit, submit_req(call, a))
    assert after.code == "assignment_not_active"


async def test_a_submit_that_lost_a_race_records_nothing(call, store, monkeypatch) -> None:
    pool, _ = await call.pool(n=1)
    a = await take(call, pool_id=pool.pool_id)
    read = store.submit_row

    async def read_then_skipped(assignment_id, *, lock=False):
        row = await read(assignment_id, lock=lock)
        if not lock:  # the worker skips between the unlocked read and the write
            store.assignments[assignment_id]["status"] = domain.SKIPPED
        return row

    monkeypatch.setattr(store, "submit_row", read_then_skipped)
    events = len(call.events)
    err = await call.error(rpc.SUBMIT, assignments.submit, submit_req(call, a))
    assert (err.code, err.details) == ("assignment_not_active", {"status": "SKIPPED"})
    assert len(call.events) == events


async def test_skip_gives_the_task_back_to_others(call, store, clock) -> None:
    pool, task_ids = await call.pool(n=1)
    a = await take(call, pool_id=pool.pool_id)
    ref = rpc.AssignmentRef(actor=call.worker(), assignment_id=a.assignment_id)
    stranger = await call.error(rpc.SKIP, assignments.skip,
                                ref.model_copy(update={"actor": call.worker("w2")}))
    assert stranger.code == "assignment_not_found"
    skipped = await call(rpc.SKIP, assignments.skip, ref)
    assert (skipped.status, skipped.finished_at) == ("SKIPPED", clock.now)
    assert call.events[-1] == "task.skipped" and store.tasks[task_ids[0]]["live_count"] == 0
    assert (await call.error(rpc.SKIP, assignments.skip, ref)).code == "assignment_not_active"
    assert (await take_error(call, pool_id=pool.pool_id)).code == "no_tasks_available"
    assert (await take(call, "w2", pool.pool_id)).task_id == task_ids[0]


async def test_a_report_is_recorded_for_the_workers_own_assignment(call) -> None:
    pool, _ = await call.pool(n=1)
    a = await take(call, pool_id=pool.pool_id)
    req = rpc.Report(actor=call.worker(), assignment_id=a.assignment_id, reason="broken_image",
                     text="does not load")
    assert (await call(rpc.REPORT, assignments.report, req)).reported is True
    assert call.payloads("task.reported")[0]["reason"] == "broken_image"
    other = await call.error(rpc.REPORT, assignments.report,
                             req.model_copy(update={"actor": call.worker("w2")}))
    assert (other.status, other.code) == (404, "assignment_not_found")


async def test_workers_see_their_own_assignments_and_usable_pools(call, store) -> None:
    pool, _ = await call.pool(n=3, priority=1)
    gated, _ = await call.pool(n=2, priority=9,
                               skill_filters=[rpc.SkillFilter(skill="en", value=50)])
    a = await take(call, pool_id=pool.pool_id)
    await take(call, "w2", pool.pool_id)
    await call(rpc.SUBMIT, assignments.submit, submit_req(call, a))
    await take(call, pool_id=pool.pool_id)
    mine = await call(rpc.MY_ASSIGNMENTS, assignments.my_assignments,
                      rpc.MyAssignments(actor=call.worker()))
    assert mine.total == 2 and {x.worker_id for x in mine.items} == {"w1"}
    done = await call(rpc.MY_ASSIGNMENTS, assignments.my_assignments,
                      rpc.MyAssignments(actor=call.worker(), status="SUBMITTED"))
    assert [x.assignment_id for x in done.items] == [a.assignment_id]
    avail = await call.raw(rpc.AVAILABLE_POOLS, assignments.available_pools,
                           rpc.AvailablePools(actor=call.worker()))
    assert [(p["pool_id"], p["available_tasks"]) for p in avail["items"]] == [(pool.pool_id, 0)]
    assert "price_minor" not in avail["items"][0] and avail["items"][0]["instructions"]
    store.workers["w3"] = {"trust_level": "new", "skills": {"en": 60}, "last_take_at": None,
                           "created_at": None}
    both = await call(rpc.AVAILABLE_POOLS, assignments.available_pools,
                      rpc.AvailablePools(actor=call.worker("w3")))
    assert [(p.pool_id, p.available_tasks) for p in both.items] == [
        (gated.pool_id, 2), (pool.pool_id, 0)]
    # staff have assignments only in sandbox pools: none of the workers' show
    mine = await call(rpc.MY_ASSIGNMENTS, assignments.my_assignments,
                      rpc.MyAssignments(actor=call.manager))
    assert (mine.total, mine.items) == (0, [])


async def test_the_sweeper_expires_overdue_assignments_in_batches(make_call, store,
                                                                  clock) -> None:
    call = make_call(expire_batch_size=2)
    ctx = call.ctx
    pool, task_ids = await call.pool(n=5, assignment_timeout_s=10)
    taken = [await take(call, f"w{i}", pool.pool_id) for i in range(5)]
    clock.advance(5)
    await assignments.expire_overdue(ctx)
    assert "task.expired" not in call.events
    clock.advance(6)
    commits = ctx.db.commits
    await assignments.expire_overdue(ctx)
    assert ctx.db.commits - commits == 3  # batches of 2, 2 and 1
    assert sorted(e["assignment_id"] for e in call.payloads("task.expired")) == sorted(
        a.assignment_id for a in taken)
    assert all(store.tasks[t]["live_count"] == 0 for t in task_ids)

"""Catalog handlers on the fake store: projects, pools, uploads, task lists, exports, stats."""

from __future__ import annotations

import csv
import io
import json

from contracts.rpc import tasks as rpc
from tasks_service import assignments, catalog


async def test_projects_are_created_changed_and_read(call) -> None:
    spec = [rpc.FieldSpec(name="image", type="url")]
    made = await call(rpc.CREATE_PROJECT, catalog.create_project, rpc.ProjectCreate(
        actor=call.admin, name="Cats", input_spec=spec, output_spec=spec))
    changed = await call(rpc.UPDATE_PROJECT, catalog.update_project, rpc.ProjectUpdate(
        actor=call.admin, project_id=made.project_id, instructions="look closely"))
    assert (changed.name, changed.instructions) == ("Cats", "look closely")
    got = await call(rpc.GET_PROJECT, catalog.get_project,
                     rpc.ProjectGet(actor=call.manager, project_id=made.project_id))
    assert got == changed
    listed = await call(rpc.LIST_PROJECTS, catalog.list_projects,
                        rpc.ProjectList(actor=call.manager))
    assert (listed.total, listed.items[0].project_id) == (1, made.project_id)
    missing = await call.error(rpc.UPDATE_PROJECT, catalog.update_project, rpc.ProjectUpdate(
        actor=call.admin, project_id="nope", name="x"))
    assert (missing.status, missing.code) == (404, "project_not_found")
    assert (await call.error(rpc.GET_PROJECT, catalog.get_project, rpc.ProjectGet(
        actor=call.admin, project_id="nope"))).code == "project_not_found"
    denied = await call.error(rpc.CREATE_PROJECT, catalog.create_project, rpc.ProjectCreate(
        actor=call.manager, name="x", input_spec=spec, output_spec=spec))
    assert (denied.status, denied.code) == (403, "forbidden")
    assert call.events == []


async def test_a_spec_with_a_pattern_re2_refuses_is_invalid(call) -> None:
    spec = [rpc.FieldSpec(name="a")]
    err = await call.error(rpc.CREATE_PROJECT, catalog.create_project, rpc.ProjectCreate(
        actor=call.admin, name="x", input_spec=spec,
        output_spec=[rpc.FieldSpec(name="b", pattern=r"(\w+)\1"),
                     rpc.FieldSpec(name="c", min_value=5, max_value=1)]))
    assert (err.status, err.code) == (422, "invalid_spec")
    assert [d["field"] for d in err.details] == ["output_spec.b", "output_spec.c"]
    assert "RE2" in err.details[0]["error"]
    made = await call(rpc.CREATE_PROJECT, catalog.create_project, rpc.ProjectCreate(
        actor=call.admin, name="x", input_spec=spec, output_spec=spec))
    err = await call.error(rpc.UPDATE_PROJECT, catalog.update_project, rpc.ProjectUpdate(
        actor=call.admin, project_id=made.project_id,
        output_spec=[rpc.FieldSpec(name="b", pattern="(?<=a)b")]))
    assert err.code == "invalid_spec"


async def test_a_pool_starts_as_a_draft_of_an_existing_project(call) -> None:
    pool, _ = await call.pool(open_=False, currency="eur", priority=2)
    assert (pool.status, pool.price_minor, pool.currency, pool.priority) == (
        "draft", call.price, "EUR", 2)
    assert await call(rpc.ADMIN_GET_POOL, catalog.admin_get_pool,
                      rpc.PoolGet(actor=call.admin, pool_id=pool.pool_id)) == pool
    missing = await call.error(rpc.CREATE_POOL, catalog.create_pool, rpc.PoolCreate(
        actor=call.admin, project_id="nope", name="p", price_minor=1))
    assert (missing.status, missing.code) == (404, "project_not_found")
    bad = await call.error(rpc.CREATE_POOL, catalog.create_pool, rpc.PoolCreate(
        actor=call.admin, project_id=pool.project_id, name="p", price_minor=1,
        skill_filters=[rpc.SkillFilter(skill="en", op="gte")]))
    assert (bad.status, bad.code) == (422, "invalid_skill_filter")
    denied = await call.error(rpc.CREATE_POOL, catalog.create_pool, rpc.PoolCreate(
        actor=call.manager, project_id=pool.project_id, name="p", price_minor=1))
    assert denied.status == 403
    assert call.events == []


async def test_pool_settings_change_and_the_price_only_while_a_draft(call) -> None:
    pool, _ = await call.pool(open_=False)
    pid = pool.pool_id
    got = await call(rpc.UPDATE_POOL, catalog.update_pool, rpc.PoolUpdate(
        actor=call.admin, pool_id=pid, name="Renamed", price_minor=5, currency="usd"))
    assert (got.name, got.price_minor, got.currency, got.overlap) == ("Renamed", 5, "USD", 1)
    same = await call(rpc.UPDATE_POOL, catalog.update_pool,
                      rpc.PoolUpdate(actor=call.admin, pool_id=pid))
    assert same == got  # nothing sent: nothing changed
    null = await call.error(rpc.UPDATE_POOL, catalog.update_pool,
                            rpc.PoolUpdate(actor=call.admin, pool_id=pid, overlap=None))
    assert (null.status, null.code) == (422, "invalid_value")
    await call(rpc.OPEN_POOL, catalog.open_pool, rpc.PoolTransition(actor=call.admin, pool_id=pid))
    fixed = await call.error(rpc.UPDATE_POOL, catalog.update_pool, rpc.PoolUpdate(
        actor=call.admin, pool_id=pid, currency="RUB"))
    assert (fixed.status, fixed.code, fixed.details["fields"]) == (409, "price_fixed",
                                                                    ["currency"])
    longer = await call(rpc.UPDATE_POOL, catalog.update_pool, rpc.PoolUpdate(
        actor=call.admin, pool_id=pid, auto_accept_after_s=3600, skill_filters=[]))
    assert (longer.auto_accept_after_s, longer.price_minor) == (3600, 5)
    assert (await call.error(rpc.UPDATE_POOL, catalog.update_pool, rpc.PoolUpdate(
        actor=call.admin, pool_id="nope", name="x"))).status == 404


async def test_every_opening_records_the_frozen_price(call) -> None:
    pool, _ = await call.pool(open_=False)
    ref = rpc.PoolTransition(actor=call.admin, pool_id=pool.pool_id)
    assert (await call(rpc.OPEN_POOL, catalog.open_pool, ref)).status == "open"
    assert (await call(rpc.OPEN_POOL, catalog.open_pool, ref)).status == "open"  # no-op
    bad = await call.error(rpc.ARCHIVE_POOL, catalog.archive_pool, ref)
    assert (bad.status, bad.code, bad.details) == (409, "invalid_transition",
                                                   {"status": "open", "to": "archived"})
    await call(rpc.CLOSE_POOL, catalog.close_pool, ref)
    await call(rpc.OPEN_POOL, catalog.open_pool, ref)
    await call(rpc.CLOSE_POOL, catalog.close_pool, ref)
    assert (await call(rpc.ARCHIVE_POOL, catalog.archive_pool, ref)).status == "archived"
    assert (await call.error(rpc.OPEN_POOL, catalog.open_pool, ref)).code == "invalid_transition"
    # every opening tells its frozen price; every closing is told too (webhooks)
    assert call.events == ["task.pool_opened", "task.pool_closed", "task.pool_opened",
                           "task.pool_closed"]
    assert {e["pool_id"] for e in call.payloads("task.pool_closed")} == {pool.pool_id}
    assert {(e["pool_id"], e["price_minor"], e["currency"]) for e in call.payloads(
        "task.pool_opened")} == {(pool.pool_id, call.price, "RUB")}
    assert (await call.error(rpc.CLOSE_POOL, catalog.close_pool, rpc.PoolTransition(
        actor=call.manager, pool_id=pool.pool_id))).status == 403


async def test_staff_views_never_carry_the_price_and_admin_views_do(call) -> None:
    pool, _ = await call.pool()
    for actor in (call.manager, call.admin):
        one = await call.raw(rpc.GET_POOL, catalog.get_pool,
                             rpc.PoolGet(actor=actor, pool_id=pool.pool_id))
        many = await call.raw(rpc.LIST_POOLS, catalog.list_pools, rpc.PoolList(actor=actor))
        assert "price_minor" not in one and "currency" not in one
        assert one["name"] == pool.name and many["total"] == 1
        assert "price_minor" not in many["items"][0]
    admin_list = await call(rpc.ADMIN_LIST_POOLS, catalog.admin_list_pools,
                            rpc.PoolList(actor=call.admin, status="open"))
    assert [p.price_minor for p in admin_list.items] == [call.price]
    for spec, handler, req in (
            (rpc.ADMIN_GET_POOL, catalog.admin_get_pool,
             rpc.PoolGet(actor=call.manager, pool_id=pool.pool_id)),
            (rpc.ADMIN_LIST_POOLS, catalog.admin_list_pools, rpc.PoolList(actor=call.manager)),
            (rpc.GET_POOL, catalog.get_pool,
             rpc.PoolGet(actor=call.worker(), pool_id=pool.pool_id))):
        assert (await call.error(spec, handler, req)).status == 403
    # an admin view is never sent where the staff view is the reply
    leak = await call.error(rpc.GET_POOL, catalog.admin_get_pool,
                            rpc.PoolGet(actor=call.manager, pool_id=pool.pool_id))
    assert (leak.status, leak.code) == (500, "internal_error")
    assert (await call.error(rpc.GET_POOL, catalog.get_pool, rpc.PoolGet(
        actor=call.manager, pool_id="nope"))).code == "pool_not_found"


async def test_uploads_report_bad_rows_by_line(call, store) -> None:
    pool, first = await call.pool(n=1, open_=False)
    tsv = "image\tGOLDEN:label\nhttps://a.org/1.png\tcat\nbad\t\nhttps://a.org/2.png\t\n"
    up = rpc.TasksUpload(actor=call.admin, pool_id=pool.pool_id, format="tsv", content=tsv)
    none = await call(rpc.UPLOAD_TASKS, catalog.upload_tasks,
                      up.model_copy(update={"all_or_nothing": True}))
    assert (none.created, [e.line for e in none.errors]) == (0, [3])
    some = await call(rpc.UPLOAD_TASKS, catalog.upload_tasks, up)
    assert (some.created, some.control_tasks, [e.line for e in some.errors]) == (2, 1, [3])
    assert len(store.tasks) == 3
    empty = await call(rpc.UPLOAD_TASKS, catalog.upload_tasks, rpc.TasksUpload(
        actor=call.admin, pool_id=pool.pool_id, content=[]))
    assert empty.created == 0 and empty.errors[0].error == "no rows to upload"
    assert (await call.error(rpc.UPLOAD_TASKS, catalog.upload_tasks, up.model_copy(
        update={"pool_id": "nope"}))).code == "pool_not_found"
    store.pools[pool.pool_id] = pool.model_copy(update={"status": "archived"})
    archived = await call.error(rpc.UPLOAD_TASKS, catalog.upload_tasks, up)
    assert (archived.status, archived.code) == (409, "pool_archived")


async def test_a_large_upload_is_written_in_slices_in_its_order(call, store) -> None:
    pool, _ = await call.pool(n=1, open_=False)
    n = 2 * catalog.UPLOAD_SLICE_ROWS + 101
    rows = [{"input_values": {"image": f"https://a.org/{i}.png"},
             **({"known_solutions": {"label": "cat"}} if i % 10 == 0 else {})}
            for i in range(n)]
    slices = []
    add = store.add_tasks

    async def counted(batch):
        slices.append(len(batch))
        await add(batch)

    store.add_tasks = counted
    up = await call(rpc.UPLOAD_TASKS, catalog.upload_tasks,
                    rpc.TasksUpload(actor=call.admin, pool_id=pool.pool_id, content=rows))
    assert (up.created, up.control_tasks, up.errors) == (n, (n + 9) // 10, [])
    assert slices == [catalog.UPLOAD_SLICE_ROWS, catalog.UPLOAD_SLICE_ROWS, 101]
    mine = [store.tasks[t] for t in up.task_ids]
    assert [t["position"] for t in mine] == list(range(n))
    assert [t["input"]["image"] for t in mine] == [f"https://a.org/{i}.png" for i in range(n)]
    assert [t["is_control"] for t in mine] == [i % 10 == 0 for i in range(n)]


async def test_task_lists_show_control_answers_to_admins_only(call) -> None:
    rows = [{"image": "https://a.org/1.png"},
            {"input_values": {"image": "https://a.org/2.png"}, "known_solutions": {"label": "dog"}}]
    pool, _ = await call.pool(rows=rows)
    admin = await call(rpc.LIST_TASKS, catalog.list_tasks,
                       rpc.TaskList(actor=call.admin, pool_id=pool.pool_id))
    assert [t.control_answers for t in admin.items] == [None, {"label": "dog"}]
    manager = await call(rpc.LIST_TASKS, catalog.list_tasks,
                         rpc.TaskList(actor=call.manager, pool_id=pool.pool_id))
    assert manager.total == 2 and all(t.control_answers is None for t in manager.items)
    assert (await call.error(rpc.LIST_TASKS, catalog.list_tasks, rpc.TaskList(
        actor=call.admin, pool_id="nope"))).status == 404


async def _work(call, pool: rpc.AdminPool, workers: int) -> None:
    for i in range(workers):
        w = call.worker(f"w{i:02}")
        a = await call(rpc.TAKE, assignments.take, rpc.Take(actor=w, pool_id=pool.pool_id))
        if i % 2:
            await call(rpc.SUBMIT, assignments.submit, rpc.Submit(
                actor=w, assignment_id=a.assignment_id, answers={"label": "dog"}))
        call.ctx.clock.advance(1)


async def test_results_export_in_pages_adds_up_to_the_whole_file(call) -> None:
    pool, _ = await call.pool(n=8)
    await _work(call, pool, 8)
    req = rpc.ExportResults(actor=call.admin, pool_id=pool.pool_id)
    whole = await call(rpc.EXPORT_RESULTS, catalog.export_results, req)
    assert (whole.rows, whole.total_rows, whole.next_cursor) == (8, 8, None)
    rows = list(csv.DictReader(io.StringIO(whole.content)))
    assert [r["ASSIGNMENT:worker_id"] for r in rows] == [f"w{i:02}" for i in range(8)]
    assert rows[1]["OUTPUT:label"] == "dog" and rows[0]["ASSIGNMENT:status"] == "ACTIVE"
    for fmt in ("csv", "json"):
        pages, cursor = [], None
        while True:
            page = await call(rpc.EXPORT_RESULTS, catalog.export_results, req.model_copy(
                update={"format": fmt, "cursor": cursor, "max_bytes": 1024}))
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(pages) > 1 and sum(p.rows for p in pages) == 8
        assert [p.total_rows for p in pages[:2]] == [8, None]
        if fmt == "csv":
            assert "".join(p.content for p in pages) == whole.content
        else:
            assert len([r for p in pages for r in json.loads(p.content)]) == 8
    submitted = await call(rpc.EXPORT_RESULTS, catalog.export_results, req.model_copy(
        update={"format": "tsv", "status": "SUBMITTED"}))
    assert submitted.rows == 4 and submitted.content_type == "text/tab-separated-values"
    bad = await call.error(rpc.EXPORT_RESULTS, catalog.export_results,
                           req.model_copy(update={"cursor": "2026-01-01T00:00:00|"}))
    assert (bad.status, bad.code) == (422, "invalid_cursor")
    assert (await call.error(rpc.EXPORT_RESULTS, catalog.export_results, req.model_copy(
        update={"actor": call.manager}))).status == 403


async def test_pool_stats_count_tasks_and_assignments(call) -> None:
    pool, _ = await call.pool(n=3)
    await _work(call, pool, 2)
    stats = await call(rpc.POOL_STATS, catalog.pool_stats,
                       rpc.PoolStatsRequest(actor=call.manager, pool_id=pool.pool_id))
    assert (stats.tasks_total, stats.tasks_open, stats.tasks_completed) == (3, 1, 0)
    assert stats.assignments == {"ACTIVE": 1, "SUBMITTED": 1, "ACCEPTED": 0, "REJECTED": 0,
                                 "SKIPPED": 0, "EXPIRED": 0}
    assert (await call.error(rpc.POOL_STATS, catalog.pool_stats, rpc.PoolStatsRequest(
        actor=call.manager, pool_id="nope"))).status == 404

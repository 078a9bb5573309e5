"""Results and quality in the browser, in Russian: the owner sees a pool's aggregated answers
by the method they pick (computed in the background by the tasks service's job process) and
sets a pool's kind; a worker's training answer shows the right answer and the hint."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import DESKTOP, unique
from tests.browser.test_emergency_and_screens import api_user

SPEC = {"input_spec": [{"name": "item", "type": "integer"}],
        "output_spec": [{"name": "label", "type": "string", "allowed_values": ["yes", "no"]}]}


def _setup(web) -> dict:
    """Two pools by API: a real one with overlap 2 and two answers per task, and a training
    pool with one known-answer task and its hint; the worker who will train."""
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {r.json()['token']}"}

        def pool(name: str, rows: list, **kw) -> str:
            r = c.post("/api/admin/projects", headers=h, json={
                "name": f"{name} project", "instructions": "Yes or no?", **SPEC})
            assert r.status_code == 201, r.text
            r = c.post("/api/admin/pools", headers=h, json={
                "project_id": r.json()["project_id"], "name": name, "price_minor": 0,
                "review_mode": "auto", "auto_accept_after_s": 0, **kw})
            pid = r.json()["pool_id"]
            assert c.post(f"/api/admin/pools/{pid}/tasks", headers=h, json=rows).status_code == 200
            assert c.post(f"/api/admin/pools/{pid}/open", headers=h).status_code == 200
            return pid

        def worker() -> tuple[str, str, dict]:
            login = unique("worker")
            r = c.post("/api/admin/users", headers=h, json={"login": login, "role": "worker"})
            temporary = r.json()["temporary_password"]
            r = c.post("/api/auth/login", json={"login": login, "password": temporary})
            tok = r.json()["token"]
            r = c.post("/api/auth/password", headers={"Authorization": f"Bearer {tok}"},
                       json={"old_password": temporary, "new_password": login + "-Strong#P-26"})
            return login, temporary, {"Authorization": f"Bearer {r.json()['token']}"}

        real_name = unique("agg")
        real = pool(real_name, [{"item": 1}, {"item": 2}], overlap=2)
        for answer in ("yes", "no"):
            _, _, wh = worker()
            for _ in range(2):
                for _attempt in range(20):  # the new worker's pause between takes
                    r = c.post("/api/worker/tasks/take", headers=wh, json={"pool_id": real})
                    if r.status_code != 429:
                        break
                    time.sleep(0.5)
                assert r.status_code == 200, r.text
                r = c.post(f"/api/worker/assignments/{r.json()['assignment_id']}/submit",
                           headers=wh, json={"answers": {"label": answer}})
                assert r.status_code == 200, r.text
        train_name = unique("train")
        train = pool(train_name, [{"item": 7, "GOLDEN:label": "yes"}])
        r = c.put(f"/api/admin/pools/{train}/quality", headers=h, json={"kind": "training"})
        assert r.status_code == 200, r.text
        task_id = c.get(f"/api/pools/{train}/tasks", headers=h).json()["items"][0]["task_id"]
        r = c.put(f"/api/admin/pools/{train}/hints", headers=h,
                  json={"hints": [{"task_id": task_id, "hint": "Смотрите на угол картинки."}]})
        assert r.status_code == 200, r.text
        login, temporary, _ = worker()
    return {"real": real_name, "real_id": real, "train": train_name, "login": login,
            "password": login + "-Strong#P-26", "admin": h}


@pytest.mark.timeout(240)
def test_aggregated_answers_quality_settings_and_training_feedback(people, browser) -> None:
    s = _setup(people)
    admin = people.person(browser, "ru", {"width": 1280, "height": 900})
    admin.login("admin", people.admin_password)
    admin.go("/admin/pools")
    card = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=s["real"]))
    card.get_by_role("button", name=admin.t("results.title"), exact=True).click()
    card.get_by_label(admin.t("results.method"), exact=True).select_option("dawid_skene")
    card.get_by_role("button", name=admin.t("results.compute"), exact=True).click()
    admin.success(admin.t("results.requested"))
    # the background job computes it within seconds (longer on a loaded machine): wait for it
    # through the API, so the page's next load is the computed one
    with people.api() as c:
        for _ in range(90):
            r = c.get(f"/api/pools/{s['real_id']}/results?method=dawid_skene",
                      headers=s["admin"])
            if r.status_code == 200 and len(r.json()["items"]) == 2:
                break
            time.sleep(1)
        assert len(r.json()["items"]) == 2, r.text
    card.get_by_label(admin.t("results.method"), exact=True).select_option("majority_vote")
    card.get_by_label(admin.t("results.method"), exact=True).select_option("dawid_skene")
    rows = card.locator("table.table tbody tr")
    for _ in range(30):
        if rows.count() == 2:
            break
        time.sleep(0.5)
    assert rows.count() == 2
    assert "label" in rows.first.inner_text() and "%" in rows.first.inner_text()
    admin.shot("results-ru-aggregated")

    tcard = admin.page.locator("section.card",
                               has=admin.page.get_by_role("heading", name=s["train"]))
    tcard.get_by_role("button", name=admin.t("quality.title"), exact=True).click()
    kind = tcard.get_by_label(admin.t("quality.kind"), exact=True)
    kind.wait_for()
    assert kind.input_value() == "training"
    admin.shot("results-ru-quality")

    worker = people.person(browser, "ru")
    worker.login(s["login"], s["password"])
    worker.go("/pools")
    wcard = worker.page.locator("section.card",
                                has=worker.page.get_by_role("heading", name=s["train"]))
    wcard.get_by_role("button", name=worker.t("pools.take"), exact=True).click()
    worker.page.get_by_role("heading", name=worker.t("task.instructions")).wait_for()
    worker.page.get_by_label("label *", exact=True).select_option("no")
    worker.button("task.submit").click()
    worker.success(worker.t("task.done"))
    fb = worker.page.get_by_test_id("training-feedback")
    fb.locator(".alert-error", has_text=worker.t("training.wrong")).wait_for()
    assert "yes" in fb.inner_text() and "Смотрите на угол картинки." in fb.inner_text()
    worker.shot("results-ru-training-feedback")


def _training_pool(web) -> tuple[str, str, list[str], dict, tuple[str, str]]:
    """A training pool of two known-answer tasks with no hints yet, and a trusted worker
    (no pause between takes, so "another task" is one click)."""
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        r = c.post("/api/admin/projects", headers=h, json={
            "name": unique("hints project"), "instructions": "Yes or no?", **SPEC})
        assert r.status_code == 201, r.text
        name = unique("hints")
        r = c.post("/api/admin/pools", headers=h, json={
            "project_id": r.json()["project_id"], "name": name, "price_minor": 0,
            "review_mode": "auto", "auto_accept_after_s": 0})
        pid = r.json()["pool_id"]
        rows = [{"item": 1, "GOLDEN:label": "yes"}, {"item": 2, "GOLDEN:label": "no"}]
        assert c.post(f"/api/admin/pools/{pid}/tasks", headers=h, json=rows).status_code == 200
        r = c.put(f"/api/admin/pools/{pid}/quality", headers=h, json={"kind": "training"})
        assert r.status_code == 200, r.text
        assert c.post(f"/api/admin/pools/{pid}/open", headers=h).status_code == 200
        tasks = [t["task_id"] for t in c.get(f"/api/pools/{pid}/tasks", headers=h).json()["items"]]
    login, password = api_user(web, "worker")
    with web.api() as c:
        users = c.get("/api/admin/users?limit=500", headers=h).json()["items"]
        [uid] = [u["user_id"] for u in users if u["login"] == login]
        r = c.post(f"/api/admin/users/{uid}/trust-level", headers=h, json={"level": "trusted"})
        assert r.status_code == 200, r.text
    return pid, name, tasks, h, (login, password)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_hint_set_where_tasks_are_listed_then_shown_after_a_training_answer(
        people, browser, lang) -> None:
    pid, name, tasks, h, worker_login = _training_pool(people)
    hint = "Смотрите на угол картинки." if lang == "ru" else "Look at the corner of the picture."
    admin = people.person(browser, lang, DESKTOP)
    admin.login("admin", people.admin_password)
    admin.go("/admin/pools")
    card = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=name))
    card.get_by_role("button", name=admin.t("hints.title"), exact=True).click()
    rows = card.locator("table.table tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2 and "yes" in rows.nth(0).inner_text()
    first = rows.nth(0)
    save = first.get_by_role("button", name=admin.t("hints.save"), exact=True)
    assert save.is_disabled()                    # nothing to save yet
    first.get_by_label(admin.t("hints.hint"), exact=True).fill(hint)
    save.click()
    admin.success(admin.t("hints.saved"))
    with people.api() as c:
        listed = c.get(f"/api/pools/{pid}/tasks", headers=h).json()["items"]
    assert [t["hint"] for t in listed] == [hint, None] and listed[0]["task_id"] == tasks[0]
    admin.shot(f"hints-{lang}-admin")

    worker = people.person(browser, lang)
    worker.login(*worker_login)
    worker.go("/pools")
    wcard = worker.page.locator("section.card", has=worker.page.get_by_role("heading", name=name))
    wcard.get_by_role("button", name=worker.t("pools.take"), exact=True).click()
    worker.page.get_by_role("heading", name=worker.t("task.instructions")).wait_for()
    worker.page.get_by_label("label *", exact=True).select_option("no")
    worker.button("task.submit").click()
    fb = worker.page.get_by_test_id("training-feedback")
    fb.get_by_text(worker.t("training.wrong"), exact=True).wait_for()
    line = fb.locator("tbody tr").first
    assert [c.strip() for c in line.locator("td").all_inner_texts()] == ["label", "no", "yes"]
    assert hint in fb.locator(".hint-box").inner_text()
    worker.shot(f"training-{lang}-wrong")

    # another task of the same pool at once: the second one, answered right, has no hint
    fb.get_by_role("button", name=worker.t("training.again"), exact=True).click()
    worker.page.get_by_role("heading", name=worker.t("task.instructions")).wait_for()
    worker.page.get_by_label("label *", exact=True).select_option("no")
    worker.button("task.submit").click()
    fb = worker.page.get_by_test_id("training-feedback")
    fb.get_by_text(worker.t("training.right"), exact=True).wait_for()
    assert fb.locator(".hint-box").count() == 0
    worker.shot(f"training-{lang}-right")
    assert not admin.csp_violations() and not worker.csp_violations()


@pytest.mark.timeout(120)
def test_a_list_loading_for_another_filter_never_shows_the_previous_one(people, browser) -> None:
    """While the pools of another project are on their way, the page says it is loading
    instead of showing the previous project's pools as if they were the new ones."""
    with people.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": people.admin_password})
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        made = []
        for _ in range(2):
            r = c.post("/api/admin/projects", headers=h, json={
                "name": unique("stale project"), "instructions": "Yes or no?", **SPEC})
            project = r.json()["project_id"]
            name = unique("stale pool")
            r = c.post("/api/admin/pools", headers=h, json={
                "project_id": project, "name": name, "price_minor": 0})
            assert r.status_code == 201, r.text
            made.append((project, name))
    (first, first_pool), (second, second_pool) = made
    admin = people.person(browser, "ru", DESKTOP)
    admin.login("admin", people.admin_password)
    admin.go(f"/admin/pools?project={first}")
    admin.page.get_by_role("heading", name=first_pool, exact=True).wait_for()
    held: list = []
    admin.page.route(lambda url: f"project_id={second}" in url, lambda route: held.append(route))
    admin.field("pools_admin.project").nth(1).select_option(second)   # the filter, not the form
    for _ in range(100):
        if held:
            break
        admin.page.wait_for_timeout(100)
    assert held, "the page asked for the other project's pools"
    admin.page.get_by_text(admin.t("common.loading"), exact=True).wait_for()
    assert admin.page.get_by_role("heading", name=first_pool, exact=True).count() == 0
    held[0].continue_()
    admin.page.get_by_role("heading", name=second_pool, exact=True).wait_for()
    assert admin.page.get_by_role("heading", name=first_pool, exact=True).count() == 0

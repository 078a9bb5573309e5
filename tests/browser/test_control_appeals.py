"""Manual control and appeals in the browser, in Russian and in English: a manager blocks a
worker by hand with a private reason; the worker sees the block's cause (a manager's hand,
never the reason) and a rejection's cause, and appeals both; the manager upholds both with
a reply; the worker sees the outcomes, is paid for the rejected work once and takes again.
(The work is set up through the API; the screens under test are the three new ones.)"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.conftest import PASSWORD_SUFFIX, unique

SECRET = "private-reason-5c1e"


def _user(c: httpx.Client, admin: dict[str, str], role: str) -> tuple[str, str, dict[str, str]]:
    login = unique(role)
    r = c.post("/api/admin/users", headers=admin, json={"login": login, "role": role})
    assert r.status_code == 201, r.text
    user_id, temporary = r.json()["user_id"], r.json()["temporary_password"]
    r = c.post("/api/auth/login", json={"login": login, "password": temporary})
    assert r.status_code == 200, r.text
    password = login + PASSWORD_SUFFIX
    r = c.post("/api/auth/password", headers={"Authorization": f"Bearer {r.json()['token']}"},
               json={"old_password": temporary, "new_password": password})
    assert r.status_code == 200, r.text
    return user_id, login, {"Authorization": f"Bearer {r.json()['token']}"}


def _until(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def _rejected_work(web) -> tuple[str, str, dict[str, str], str, dict[str, str], str, str]:
    """A worker whose answer a manager rejected; returns ids, logins and headers."""
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        admin = {"Authorization": f"Bearer {r.json()['token']}"}
        worker_id, worker_login, worker = _user(c, admin, "worker")
        _, manager_login, manager = _user(c, admin, "manager")
        r = c.post("/api/admin/projects", headers=admin, json={
            "name": unique("appeals"), "instructions": "Answer.",
            "input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]})
        r = c.post("/api/admin/pools", headers=admin, json={
            "project_id": r.json()["project_id"], "name": unique("appeals"),
            "price_minor": 1000, "review_mode": "manual"})
        pool_id = r.json()["pool_id"]
        c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin,
               json=[{"q": "1"}, {"q": "2"}])
        assert c.post(f"/api/admin/pools/{pool_id}/open", headers=admin).status_code == 200

        def take():
            r = c.post("/api/worker/tasks/take", headers=worker, json={"pool_id": pool_id})
            return r.json() if r.status_code == 200 else None
        aid = _until(take)["assignment_id"]
        r = c.post(f"/api/worker/assignments/{aid}/submit", headers=worker,
                   json={"answers": {"a": "x"}})
        assert r.status_code == 200, r.text
        _until(lambda: c.post(f"/api/review/submissions/{aid}/lock",
                              headers=manager).status_code == 200)
        r = c.post(f"/api/review/submissions/{aid}/reject", headers=manager,
                   json={"comment": "not what was asked"})
        assert r.status_code == 200, r.text
    return (worker_id, worker_login, worker, manager_login, manager, pool_id, aid)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_manual_block_and_a_rejection_are_appealed_and_upheld(people, browser,
                                                                  lang) -> None:
    web = people
    worker_id, worker_login, worker_h, manager_login, manager_h, pool_id, aid = \
        _rejected_work(web)

    manager = web.person(browser, lang)
    manager.login(manager_login, manager_login + PASSWORD_SUFFIX)
    manager.go("/workers/control")
    manager.field("control.worker_id").fill(worker_id)
    manager.field("control.scope").select_option("all")
    manager.field("control.unit").select_option("permanent")
    manager.field("control.reason").fill(SECRET)
    manager.button("control.restrict_now").click()
    manager.success(manager.t("control.restricted"))
    manager.shot(f"control-{lang}-manager-blocks")

    worker = web.person(browser, lang)
    worker.login(worker_login, worker_login + PASSWORD_SUFFIX)
    worker.go("/my-restrictions")
    block = worker.page.get_by_test_id("my-restriction").first
    block.get_by_text(worker.t("appeals.cause.manual")).wait_for()
    rejection = worker.page.get_by_test_id("my-rejection").first
    rejection.get_by_text(worker.t("appeals.decided_by.manager")).wait_for()
    assert "not what was asked" in rejection.inner_text()
    assert SECRET not in worker.page.inner_text("body")
    with web.api() as c:       # the take is refused while blocked, with a clear code
        r = c.post("/api/worker/tasks/take", headers=worker_h, json={"pool_id": pool_id})
        assert r.status_code == 403 and r.json()["error"]["code"] == "restricted", r.text
    for card, text in ((block, "I did nothing wrong"), (rejection, "My answer follows the task")):
        card.get_by_role("button", name=worker.t("appeals.appeal"), exact=True).click()
        card.get_by_label(worker.t("appeals.message"), exact=True).fill(text)
        card.get_by_role("button", name=worker.t("appeals.send"), exact=True).click()
        card.get_by_test_id("appeal-outcome").wait_for()
    assert worker.page.get_by_test_id("appeal-outcome").count() == 2
    worker.shot(f"control-{lang}-worker-appeals")

    manager.go("/appeals")
    for text in ("I did nothing wrong", "My answer follows the task"):
        card = manager.page.get_by_test_id("appeal").filter(has_text=text)
        card.get_by_label(manager.t("appeals.reply"), exact=True).fill(f"agreed: {text}")
        manager.shot(f"control-{lang}-manager-decides")
        card.get_by_role("button", name=manager.t("appeals.uphold"), exact=True).click()
        manager.success(manager.t("appeals.decided.upheld"))
        card.wait_for(state="detached")        # it leaves the pending list

    worker.page.reload()                     # the decisions are the review service's at once
    worker.page.get_by_test_id("appeal-outcome").filter(
        has_text=worker.t("appeals.status.upheld")).nth(1).wait_for()
    assert "agreed: I did nothing wrong" in worker.page.inner_text("main")
    worker.shot(f"control-{lang}-worker-outcomes")

    with web.api() as c:
        def credited():
            r = c.get("/api/worker/ledger", headers=worker_h)
            return r.json()["items"] or None
        [entry] = _until(credited)                       # paid once for the upheld rejection
        assert entry["assignment_id"] == aid

        def takes():                                     # the lifted block: takes again
            r = c.post("/api/worker/tasks/take", headers=worker_h, json={"pool_id": pool_id})
            assert r.status_code in (200, 403, 429), r.text
            return r.status_code == 200
        _until(takes)
        assert [i["assignment_id"] for i in c.get("/api/worker/ledger",
                                                  headers=worker_h).json()["items"]] == [aid]
        r = c.get("/api/appeals?status=upheld", headers=manager_h)
        assert {a["worker_id"] for a in r.json()["items"]} >= {worker_id}

"""Safe mode in the browser: a manager proposes a pool's new timeout (nothing changes), an
admin confirms it (it changes) and reverts it (a new change, confirmed: the old value is
back), then patches a pool's worker share directly, which asks for the TOTP code."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, TotpCodes, unique
from tests.browser.test_emergency_and_screens import api_user


def _setup(web) -> tuple[str, str, tuple[str, str], TotpCodes]:
    """A pool (timeout 600 s), and an admin of this test with TOTP set up."""
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        r = c.post("/api/admin/projects", headers=h, json={
            "name": unique("changes"), "instructions": "Do it.",
            "input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]})
        assert r.status_code == 201, r.text
        name = unique("Пул")
        r = c.post("/api/admin/pools", headers=h, json={
            "project_id": r.json()["project_id"], "name": name, "price_minor": 100,
            "currency": "RUB", "assignment_timeout_s": 600})
        assert r.status_code == 201, r.text
        pool_id = r.json()["pool_id"]
        login, password = api_user(web, "admin")
        r = c.post("/api/auth/login", json={"login": login, "password": password})
        ah = {"Authorization": f"Bearer {r.json()['token']}"}
        r = c.post("/api/auth/mfa/setup", headers=ah)
        assert r.status_code == 200, r.text
        codes = TotpCodes(r.json()["secret"])
        r = c.post("/api/auth/mfa/confirm", headers=ah, json={"code": codes.next()})
        assert r.status_code == 200, r.text
    return pool_id, name, (login, password), codes


def _admin_get(web, path: str) -> dict:
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        r = c.get(f"/api{path}", headers={"Authorization": f"Bearer {r.json()['token']}"})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_propose_confirm_revert_and_patch_money(people, browser, lang) -> None:
    web = people
    pool_id, pool_name, admin_login, codes = _setup(web)
    timeout = lambda: _admin_get(web, f"/admin/pools/{pool_id}")["assignment_timeout_s"]  # noqa: E731

    manager = web.person(browser, lang, DESKTOP)
    manager_login = api_user(web, "manager")
    manager.login(*manager_login)
    manager.go("/admin/changes")
    # a manager finds it among the settings, not under the owner's group they do not have
    setup = manager.page.locator(".nav-group", has=manager.page.get_by_role(
        "heading", name=manager.t("nav.group.setup"), exact=True))
    setup.get_by_role("link", name=manager.t("changes.title"), exact=True).wait_for()
    assert manager.page.get_by_role("heading", name=manager.t("nav.group.owner"),
                                    exact=True).count() == 0
    manager.field("changes.setting").select_option("pool.assignment_timeout_s")
    manager.field("changes.target").select_option(pool_id)
    manager.field("changes.new_timeout").fill("900")
    manager.field("common.reason").fill("тексты длинные" if lang == "ru" else "long texts")
    manager.button("changes.propose").click()
    sec = lambda n: manager.t("changes.seconds", n=n)  # noqa: E731
    manager.success(manager.t("changes.proposed_now", before=sec(600), after=sec(900)))
    assert timeout() == 600                      # nothing changes before the confirmation
    mine = manager.page.locator("tr", has_text=pool_name)
    mine.wait_for()
    assert manager_login[0] in mine.inner_text()  # a manager may not list users: the API names
    manager.shot(f"changes-proposed-{lang}")

    admin = web.person(browser, lang, DESKTOP)
    admin.login(*admin_login)
    admin.go("/admin/changes")
    row = admin.page.locator("tr", has_text=pool_name)
    assert f"{sec(600)} → {sec(900)}" in row.inner_text()
    assert manager_login[0] in row.inner_text()  # the proposer by login, not by id
    row.get_by_role("button", name=admin.t("changes.confirm"), exact=True).click()
    admin.success(admin.t("changes.confirm_done"))
    assert timeout() == 900

    admin.field("common.status").select_option("applied")
    row = admin.page.locator("tr", has_text=pool_name).filter(
        has_text=admin.t("changes.state.applied"))
    row.get_by_role("button", name=admin.t("changes.revert"), exact=True).click()
    admin.success(admin.t("changes.revert_done"))
    assert timeout() == 900                      # the revert is only proposed
    admin.field("common.status").select_option("proposed")
    row = admin.page.locator("tr", has_text=pool_name).filter(
        has_text=f"{sec(900)} → {sec(600)}").filter(has_text=admin.t("changes.revert_mark"))
    row.wait_for()
    row.get_by_role("button", name=admin.t("changes.confirm"), exact=True).click()
    admin.success(admin.t("changes.confirm_done"))
    assert timeout() == 600

    # a money setting patched directly: the page asks for the second factor first
    admin.field("changes.setting").select_option("worker_share")
    admin.field("changes.target").select_option(pool_id)
    admin.field("changes.new_share").fill("0.65")
    admin.button("changes.patch").click()
    group = admin.page.get_by_role("group", name=admin.t("mfa.step_up"))
    group.get_by_label(admin.t("mfa.code"), exact=True).fill(codes.next())
    group.get_by_role("button", name=admin.t("mfa.confirm"), exact=True).click()
    admin.success(admin.t("changes.patched_now"))
    assert _admin_get(web, f"/admin/pools/{pool_id}/worker-share")["share_bps"] == 6500
    admin.field("common.status").select_option("")
    admin.page.locator("tr", has_text=admin.t("changes.kind.worker_share")).first.wait_for()
    admin.shot(f"changes-applied-{lang}")
    assert not admin.csp_violations() and not manager.csp_violations()

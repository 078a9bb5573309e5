"""The emergency switch as three people see it, and every screen at phone and desktop width in
both languages: no sideways scroll, no serious or critical axe-core finding, no CSP refusal,
a screenshot of each in test-output/screenshots/."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.browser.conftest import DESKTOP, PHONE, SHOTS, TotpCodes, unique

SCREENS = {
    "public": ["/login", "/status", "/help", "/contact"],
    "worker": ["/pools", "/task", "/my-tasks", "/ledger", "/balance", "/support", "/security",
               "/legal", "/help", "/chat"],
    "manager": ["/review", "/stats", "/top-workers", "/reports", "/rules", "/restrictions",
                "/support", "/chat", "/security"],
    "admin": ["/admin/dashboard", "/admin/projects", "/admin/pools", "/admin/share",
              "/admin/trust", "/admin/users", "/admin/payouts", "/admin/emergency",
              "/admin/audit", "/admin/doctor", "/admin/dead-letters", "/admin/leads",
              "/admin/budgets", "/admin/webhooks", "/security",
              "/rules", "/review"],
}


def api_user(web, role: str) -> tuple[str, str]:
    """A user made through the API (login, password already chosen)."""
    with web.api() as c:
        admin = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {admin.json()['token']}"}
        login = unique(role)
        r = c.post("/api/admin/users", headers=h, json={"login": login, "role": role})
        tmp = r.json()["temporary_password"]
        tok = c.post("/api/auth/login", json={"login": login, "password": tmp}).json()["token"]
        password = login + "-Strong#Pass-2026"
        r = c.post("/api/auth/password", headers={"Authorization": f"Bearer {tok}"},
                   json={"old_password": tmp, "new_password": password})
        assert r.status_code == 200, r.text
    return login, password


def elevate(admin, web) -> None:
    """Answer the second-factor question if the page asks it."""
    group = admin.page.get_by_role("group", name=admin.t("mfa.step_up"))
    group.get_by_label(admin.t("mfa.code"), exact=True).fill(web.totp.next())
    group.get_by_role("button", name=admin.t("mfa.confirm"), exact=True).click()


def ensure_mfa(admin, web) -> None:
    admin.go("/security")
    if web.totp is None:
        admin.button("mfa.setup").click()
        web.totp = TotpCodes(admin.page.get_by_test_id("mfa-secret").inner_text())
        admin.field("mfa.code").fill(web.totp.next())
        admin.button("mfa.confirm").click()
        admin.success(admin.t("mfa.enabled_now"))


def switch(admin, web, reason: str, done_key: str) -> None:
    admin.go("/admin/emergency")
    admin.field("common.reason").fill(reason)
    admin.page.locator("main form button[type=submit]").click()
    done = admin.page.locator(".alert-success", has_text=admin.t(done_key))
    group = admin.page.get_by_role("group", name=admin.t("mfa.step_up"))
    done.or_(group).first.wait_for()
    if group.is_visible():
        elevate(admin, web)
    done.wait_for()


@pytest.mark.timeout(240)
def test_emergency_banner_for_everyone_and_writes_refused(people, browser) -> None:
    web = people
    admin = web.person(browser, "en")
    admin.login("admin", web.admin_password)
    ensure_mfa(admin, web)
    worker = web.person(browser, "ru")
    worker.login(*api_user(web, "worker"))
    manager = web.person(browser, "en", DESKTOP)
    manager.login(*api_user(web, "manager"))
    worker.go("/support")
    manager.go("/review")
    try:
        switch(admin, web, "incident drill", "emergency.on_now")
        for p in (admin, worker, manager):       # live hint, no reload
            p.page.get_by_test_id("read-only-banner").wait_for(timeout=10_000)
            assert "incident drill" in p.page.get_by_test_id("read-only-banner").inner_text()
            p.shot(f"emergency-{p.lang}-{p.page.viewport_size['width']}")
        # every write is refused with the reason said in the viewer's language
        worker.field("support.subject").fill("help")
        worker.field("support.text").fill("is it down?")
        worker.button("support.send").click()
        assert worker.t("error.read_only") in worker.error().inner_text()
        manager.button("review.next").click()
        assert manager.t("error.read_only") in manager.error().inner_text()
        admin.go("/admin/users")
        admin.field("login.login").fill(unique("nobody"))
        admin.button("users.create").click()
        assert admin.t("error.read_only") in admin.error().inner_text()
    finally:
        switch(admin, web, "drill over", "emergency.off_now")
    for p in (admin, worker, manager):
        p.page.get_by_test_id("read-only-banner").wait_for(state="detached", timeout=35_000)


def seed(web, worker: tuple[str, str]) -> None:
    """Something on every screen: a pool with tasks, one answer waiting for review and one
    task in progress for ``worker``."""
    with web.api() as c:
        tok = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {tok.json()['token']}"}
        project = c.post("/api/admin/projects", headers=h, json={
            "name": unique("screens"), "instructions": "## Check\n\n- look\n- answer",
            "input_spec": [{"name": "url", "type": "url"}],
            "output_spec": [{"name": "label", "allowed_values": ["cat", "dog"]},
                            {"name": "note", "required": False, "max_length": 500}]}).json()
        pool = c.post("/api/admin/pools", headers=h, json={
            "project_id": project["project_id"], "name": unique("screens pool"),
            "price_minor": 1234, "currency": "RUB"}).json()
        c.post(f"/api/admin/pools/{pool['pool_id']}/tasks", headers=h,
               json=[{"url": f"https://example.com/{i}.png"} for i in range(3)])
        c.post(f"/api/admin/pools/{pool['pool_id']}/open", headers=h)
        wt = c.post("/api/auth/login", json={"login": worker[0], "password": worker[1]})
        wh = {"Authorization": f"Bearer {wt.json()['token']}"}
        first = c.post("/api/worker/tasks/take", headers=wh, json={"pool_id": pool["pool_id"]})
        assert first.status_code == 200, first.text
        r = c.post(f"/api/worker/assignments/{first.json()['assignment_id']}/submit", headers=wh,
                   json={"answers": {"label": "dog"}, "proof_url": "https://example.com/p.png"})
        assert r.status_code == 200, r.text
        time.sleep(1.1)              # a new worker's pause between takes
        assert c.post("/api/worker/tasks/take", headers=wh,
                      json={"pool_id": pool["pool_id"]}).status_code == 200


AXE_RUN = """async () => {
  const r = await axe.run(document);
  return {passes: r.passes.length, violations: r.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))};
}"""

OVERFLOW = """() => {
  const d = document.documentElement;
  const wide = [...document.querySelectorAll("main *")]
    .filter(e => e.getBoundingClientRect().right > d.clientWidth + 1)
    .slice(0, 3).map(e => e.tagName + "." + e.className);
  return {scroll: d.scrollWidth, client: d.clientWidth, wide};
}"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_screen_fits_a_phone_and_passes_axe(people, browser, node_modules, lang) -> None:
    web = people
    axe = (node_modules / "axe-core" / "axe.min.js").read_text()
    accounts = {"worker": api_user(web, "worker"), "manager": api_user(web, "manager"),
                "admin": ("admin", web.admin_password)}
    seed(web, accounts["worker"])
    problems: list[str] = []
    for width, viewport in (("390", PHONE), ("1280", DESKTOP)):
        for role, paths in SCREENS.items():
            p = web.person(browser, lang, viewport)
            p.ctx.add_init_script(axe)           # the page's CSP does not apply to it
            if role != "public":
                p.login(*accounts[role])
            for path in paths:
                p.go(path)
                p.page.wait_for_function(  # every part of the screen has loaded
                    "t => !document.querySelector('main').innerText.includes(t)",
                    arg=p.t("common.loading"))
                p.page.wait_for_timeout(100)
                name = f"{lang}-{width}-{role}{path.replace('/', '-')}"
                p.shot(name)
                size = p.page.evaluate(OVERFLOW)
                if size["scroll"] > size["client"]:
                    problems.append(f"{name}: {size['scroll']}px wide in {size['client']}px "
                                    f"{size['wide']}")
                axe_result = p.page.evaluate(AXE_RUN)
                assert axe_result["passes"] > 5, f"{name}: axe checked nothing"
                for v in axe_result["violations"]:
                    problems.append(f"{name}: axe {v['impact']} {v['id']} ({v['help']}) "
                                    f"{v['nodes']}")
            problems += [f"{lang}-{width}-{role}: {m}" for m in p.csp_violations()]
            problems += [f"{lang}-{width}-{role}: {m}" for m in p.console
                         if m.startswith("pageerror")]
            p.ctx.close()
            web.people.remove(p)
    (SHOTS / f"screens-{lang}-problems.json").write_text(json.dumps(problems, indent=1))
    assert problems == []


@pytest.mark.timeout(120)
def test_rules_editor_names_every_missing_field_then_saves(people, browser) -> None:
    web = people
    admin = web.person(browser, "ru", DESKTOP)
    admin.login("admin", web.admin_password)
    admin.go("/rules")
    admin.button("rules.save").click()
    assert admin.t("error.rule_incomplete") in admin.error().inner_text()
    editor = admin.page.locator("section.card", has_text=admin.t("rules.new"))
    marked = editor.locator(".field-error", has_text=admin.t("rules.required"))
    assert marked.count() >= 5                 # pool, counter, field, compare, threshold, action
    editor.get_by_label(admin.t("rules.name"), exact=True).fill("cap per day")
    editor.get_by_label(admin.t("rules.scope"), exact=True).select_option("platform")
    editor.get_by_label(admin.t("rules.kind"), exact=True).select_option("submitted_answers")
    editor.get_by_label(admin.t("rules.field"), exact=True).select_option("submitted_count_24h")
    editor.get_by_label(admin.t("rules.operator"), exact=True).select_option(">=")
    editor.get_by_label(admin.t("rules.value"), exact=True).fill("500")
    editor.get_by_label(admin.t("rules.action"), exact=True).select_option("restriction")
    editor.get_by_label(admin.t("rules.param.scope"), exact=True).select_option("all")
    editor.get_by_label(admin.t("rules.param.duration_unit"), exact=True).select_option("hours")
    editor.get_by_label(admin.t("rules.param.duration"), exact=True).fill("12")
    editor.get_by_label(admin.t("rules.param.private_comment"), exact=True).fill("daily cap")
    admin.button("rules.backtest").click()               # nobody submits 500 answers a day
    said = admin.page.get_by_test_id("backtest-result").inner_text()
    pattern = re.escape(admin.t("rules.backtest_result", n=0, events="EVENTS")).replace(
        "EVENTS", r"[\d\s\u00a0]+")
    assert re.fullmatch(pattern, said.strip()), said
    admin.button("rules.save").click()
    admin.success(admin.t("rules.saved"))
    admin.page.get_by_role("cell", name="cap per day").wait_for()
    admin.shot("rules-ru-1280-saved")
    # switch it off again: it would restrict every worker of the other tests
    row = admin.page.locator("tr", has_text="cap per day")
    row.get_by_role("button", name=admin.t("rules.disable"), exact=True).click()
    row.get_by_text(admin.t("rules.disabled"), exact=True).wait_for()

"""A rule edited in place in the browser: the owner opens a rule at version 1, the API's
refusals come back on the very fields, in the page's language (a schema bound, a threshold
that is not a number), then a valid edit is saved as version 2, switched off, and both
versions are listed with who wrote them; a manager reads the versions but cannot edit."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, unique
from tests.browser.test_emergency_and_screens import api_user


def _setup(web) -> tuple[str, str, dict, str]:
    """A pool of its own and a rule on it (so the rule never touches another test's workers)."""
    with web.api() as c:
        r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        r = c.post("/api/admin/projects", headers=h, json={
            "name": unique("rules-edit"), "instructions": "Do it.",
            "input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]})
        assert r.status_code == 201, r.text
        project_id = r.json()["project_id"]
        r = c.post("/api/admin/pools", headers=h, json={
            "project_id": project_id, "name": unique("Пул"), "price_minor": 100,
            "currency": "RUB"})
        assert r.status_code == 201, r.text
        name = unique("Много отклонений")
        r = c.post("/api/admin/rules", headers=h, json={
            "name": name, "scope": "pool", "pool_id": r.json()["pool_id"],
            "collector": {"kind": "acceptance_rate", "history_size": 10},
            "conditions": [{"field": "rejected_rate", "operator": ">", "value": 50}],
            "action": {"type": "restriction", "scope": "pool", "duration_unit": "hours",
                       "duration": 2, "private_comment": "too many rejections"}})
        assert r.status_code == 201, r.text
        return r.json()["rule_id"], name, h, project_id


@pytest.mark.timeout(180)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_edit_a_rule_into_a_new_version(people, browser, lang) -> None:
    web = people
    rule_id, name, h, project_id = _setup(web)
    admin = web.person(browser, lang, DESKTOP)
    admin.login("admin", web.admin_password)
    admin.go("/rules")
    row = admin.page.locator("tr", has_text=name)
    row.get_by_role("button", name=admin.t("rules.edit"), exact=True).click()
    admin.page.get_by_role("heading", name=admin.t("rules.edit_title", name=name)).wait_for()
    form = admin.page.locator("section.card", has=admin.button("rules.save_version"))
    assert admin.t("rules.version_n", version=1) in form.inner_text()
    # the counter and where it acts are shown, not offered for change
    assert admin.t("rules.kind.acceptance_rate") in form.inner_text()
    assert form.get_by_label(admin.t("rules.kind"), exact=True).count() == 0
    value = form.get_by_label(admin.t("rules.value"), exact=True)
    assert value.input_value() == "50"
    assert form.get_by_label(admin.t("rules.param.duration"), exact=True).input_value() == "2"

    # a bound of the request's schema: marked on its field, in this language
    form.get_by_label(admin.t("rules.param.duration"), exact=True).fill("0")
    admin.button("rules.save_version").click()
    assert admin.t("error.validation_error") in admin.error().inner_text()
    form.locator(".field.has-error", has=admin.page.get_by_label(
        admin.t("rules.param.duration"), exact=True)).get_by_text(
        admin.t("field.min_value", value=1), exact=True).wait_for()
    # the rules service's own check (a threshold must be a number): on the threshold
    form.get_by_label(admin.t("rules.param.duration"), exact=True).fill("3")
    value.fill("half")
    admin.button("rules.save_version").click()
    admin.error(admin.t("error.rule_invalid"))
    marked = form.locator(".field.has-error")
    marked.get_by_text(admin.t("field.number"), exact=True).wait_for()
    assert marked.count() == 1
    admin.shot(f"rules-edit-{lang}-refused")
    with web.api() as c:
        assert c.get(f"/api/rules/{rule_id}", headers=h).json()["version"] == 1

    new_name = name + " (70%)"
    form.get_by_label(admin.t("rules.name"), exact=True).fill(new_name)
    value.fill("70")
    form.get_by_label(admin.t("rules.enabled_check"), exact=True).uncheck()
    admin.button("rules.save_version").click()
    admin.success(admin.t("rules.edited", **{"from": 1, "version": 2}))
    assert admin.t("rules.version_n", version=2) in form.locator(".card-head").inner_text()
    assert form.locator(".field.has-error").count() == 0
    with web.api() as c:
        rule = c.get(f"/api/rules/{rule_id}", headers=h).json()
    assert (rule["version"], rule["name"], rule["enabled"]) == (2, new_name, False)
    assert rule["conditions"] == [{"field": "rejected_rate", "operator": ">", "value": 70}]
    assert rule["action"]["duration"] == 3 and rule["collector"]["history_size"] == 10
    row = admin.page.locator("tr", has_text=new_name)
    row.get_by_text(admin.t("rules.disabled"), exact=True).wait_for()
    admin.shot(f"rules-edit-{lang}-saved")

    row.get_by_role("button", name=admin.t("rules.version_n", version=2), exact=True).click()
    versions = admin.page.locator("section.card", has=admin.page.get_by_role(
        "heading", name=admin.t("rules.versions_title", name=new_name)))
    lines = versions.locator("tbody tr")
    lines.nth(1).wait_for()
    assert lines.count() == 2
    newest, first = lines.nth(0).inner_text(), lines.nth(1).inner_text()
    assert admin.t("rules.current") in newest and "70" in newest and new_name in newest
    assert "50" in first and admin.t("rules.current") not in first
    assert "admin" in newest and "admin" in first     # the login, not the user id
    admin.shot(f"rules-edit-{lang}-versions")

    # a new rule can act on a whole project: the editor offers the projects
    editor = admin.page.locator("section.card", has_text=admin.t("rules.new"))
    editor.get_by_label(admin.t("rules.name"), exact=True).fill(name + " project")
    editor.get_by_label(admin.t("rules.scope"), exact=True).select_option("project")
    editor.get_by_label(admin.t("rules.project"), exact=True).select_option(project_id)
    editor.get_by_label(admin.t("rules.kind"), exact=True).select_option("skipped_in_row")
    editor.get_by_label(admin.t("rules.field"), exact=True).select_option("skipped_in_row_count")
    editor.get_by_label(admin.t("rules.operator"), exact=True).select_option(">=")
    editor.get_by_label(admin.t("rules.value"), exact=True).fill("20")
    editor.get_by_label(admin.t("rules.action"), exact=True).select_option("set_skill")
    editor.get_by_label(admin.t("rules.param.skill"), exact=True).fill("skipper")
    editor.get_by_label(admin.t("rules.param.value"), exact=True).fill("0")
    admin.button("rules.save").click()
    admin.success(admin.t("rules.saved"))
    with web.api() as c:
        made = [r for r in c.get("/api/rules?limit=500", headers=h).json()["items"]
                if r["name"] == name + " project"]
    assert [(r["scope"], r["project_id"]) for r in made] == [("project", project_id)]

    manager = web.person(browser, lang)                  # on a phone: rows become cards
    manager.login(*api_user(web, "manager"))
    manager.go("/rules")
    mrow = manager.page.locator("tr", has_text=new_name)
    mrow.wait_for()
    assert mrow.get_by_role("button", name=manager.t("rules.edit"), exact=True).count() == 0
    mrow.get_by_role("button", name=manager.t("rules.version_n", version=2), exact=True).click()
    mversions = manager.page.locator("section.card", has_text=manager.t(
        "rules.versions_title", name=new_name)).locator("tbody tr")
    mversions.nth(1).wait_for()
    assert "admin" in mversions.nth(1).inner_text()   # a manager sees the login too
    manager.shot(f"rules-edit-{lang}-390-manager-versions")
    assert not admin.csp_violations() and not manager.csp_violations()

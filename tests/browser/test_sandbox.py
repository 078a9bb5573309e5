"""The sandbox in the browser, in Russian: the owner creates a sandbox project (the
checkbox), a priced pool of it with tasks, opens it with no budget at all, and tries a
task as a worker would on the sandbox screen (the worker's task form), submitting it for
review; the project, the pool, the task and the queued answer carry the "Песочница"
mark."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import DESKTOP, unique


@pytest.mark.timeout(180)
def test_owner_creates_a_sandbox_project_and_tries_a_task(people, browser) -> None:
    admin = people.person(browser, "ru", DESKTOP)
    admin.login("admin", people.admin_password)
    name = unique("песочница")

    admin.go("/admin/projects")
    admin.field("projects.name").fill(f"{name} project")
    admin.field("projects.instructions").fill("# Какого цвета?\n\nОтветьте одним словом.")
    spec_in = admin.page.locator("fieldset", has_text=admin.t("projects.input_spec"))
    spec_in.get_by_label(admin.t("spec.name"), exact=True).fill("n")
    spec_in.get_by_label(admin.t("spec.type"), exact=True).select_option("integer")
    spec_out = admin.page.locator("fieldset", has_text=admin.t("projects.output_spec"))
    spec_out.get_by_label(admin.t("spec.name"), exact=True).fill("colour")
    spec_out.get_by_label(admin.t("spec.allowed"), exact=True).fill("красный, синий")
    admin.field("projects.sandbox").check()
    admin.button("projects.create").click()
    admin.success(admin.t("projects.created", name=f"{name} project"))
    row = admin.page.locator("table.table tr", has_text=f"{name} project")
    assert admin.t("sandbox.mark") in row.inner_text()

    admin.go("/admin/pools")
    admin.field("pools_admin.project").first.select_option(label=f"{name} project")
    admin.field("pools_admin.name").fill(name)
    admin.field("pools_admin.price").fill("15,00")
    admin.button("pools_admin.create").click()
    admin.success(admin.t("pools_admin.created", name=name))
    card = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=name))
    assert card.get_by_test_id("sandbox-mark").inner_text() == admin.t("sandbox.mark")
    card.get_by_role("button", name=admin.t("upload.title"), exact=True).click()
    card.get_by_label(admin.t("upload.paste"), exact=True).fill("INPUT:n\n1\n2\n")
    card.get_by_role("button", name=admin.t("upload.submit"), exact=True).click()
    admin.success(admin.t("upload.created", n=2))
    # no requester budget, no reserve: a sandbox pool opens all the same
    card.get_by_role("button", name=admin.t("pools_admin.open"), exact=True).click()
    admin.success(admin.t("pools_admin.open_done"))
    card.get_by_role("link", name=admin.t("sandbox.try"), exact=True).wait_for()
    admin.shot("sandbox-ru-admin-pool")
    card.get_by_role("link", name=admin.t("sandbox.try"), exact=True).click()

    admin.page.get_by_role("heading", name=admin.t("sandbox.title")).wait_for()
    pools = admin.page.locator("section.card", has_text=admin.t("sandbox.pools"))
    pools.locator("tr", has_text=name).get_by_role(
        "button", name=admin.t("sandbox.try"), exact=True).click()
    admin.page.get_by_role("heading", name=admin.t("task.instructions")).wait_for()
    work = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=name))
    assert admin.t("sandbox.trying") in work.inner_text()
    assert "Какого цвета?" in work.inner_text() and work.get_by_test_id("sandbox-mark").count()
    # no report or chat for a sandbox try: they would reach real people
    assert admin.page.get_by_role("button", name=admin.t("task.report"), exact=True).count() == 0
    admin.page.get_by_label("colour *", exact=True).select_option("синий")
    admin.field("task.comment").fill("пробую как исполнитель")
    admin.field("task.proof_url").fill("https://example.org/proof.png")
    admin.shot("sandbox-ru-try-task")
    admin.button("task.submit").click()
    admin.success(admin.t("sandbox.submitted"))
    mine = admin.page.locator("section.card", has_text=admin.t("sandbox.mine"))
    mine.locator("tbody tr", has_text=admin.t("assignment.SUBMITTED")).wait_for()
    admin.shot("sandbox-ru-submitted")

    # the try waits in the review queue like any answer, marked
    admin.go("/review")
    row = admin.page.locator("table.table tbody tr", has_text=name)
    for _ in range(30):
        if row.count():
            break
        time.sleep(0.5)
        admin.go("/review")
    assert admin.t("sandbox.mark") in row.first.inner_text()
    admin.shot("sandbox-ru-review-queue")
    assert admin.csp_violations() == []

"""The whole taxi flow as three people in three browsers, once in Russian and once in English:
the owner sets up a project, a pool and tasks by upload; the worker takes, reloads, submits;
the manager rejects one and accepts another; the worker sees the money and asks for it; the
owner pays with the second factor; the worker sees it paid."""

from __future__ import annotations

import pytest

from tests.browser.conftest import TotpCodes, unique

# What the UI must show for 10.00 RUB at the default 50 % share: the worker's 5.00.
CREDIT = {"ru": "5,00\u00a0₽", "en": "RUB\u00a05.00"}
PRICE = {"ru": "10,00", "en": "10.00"}


def create_user(admin, role: str) -> tuple[str, str]:
    admin.go("/admin/users")
    login = unique(role)
    admin.field("login.login").fill(login)
    admin.field("users.role").select_option(role)
    admin.button("users.create").click()
    admin.success(admin.t("users.created", login=login))
    temporary = admin.page.get_by_test_id("temporary-password").inner_text()
    return login, temporary


def set_up_pool(admin, name: str) -> None:
    admin.go("/admin/projects")
    admin.field("projects.name").fill(f"{name} project")
    admin.field("projects.instructions").fill(
        "# Is it a cat?\n\nLook at the **picture** and answer.")
    spec_in = admin.page.locator("fieldset", has_text=admin.t("projects.input_spec"))
    spec_in.get_by_label(admin.t("spec.name"), exact=True).fill("url")
    spec_in.get_by_label(admin.t("spec.type"), exact=True).select_option("url")
    spec_out = admin.page.locator("fieldset", has_text=admin.t("projects.output_spec"))
    spec_out.get_by_label(admin.t("spec.name"), exact=True).fill("label")
    spec_out.get_by_label(admin.t("spec.allowed"), exact=True).fill("cat, dog")
    admin.button("projects.create").click()
    admin.success(admin.t("projects.created", name=f"{name} project"))

    admin.go("/admin/pools")
    admin.field("pools_admin.project").first.select_option(label=f"{name} project")
    admin.field("pools_admin.name").fill(name)
    admin.field("pools_admin.price").fill(PRICE[admin.lang])
    admin.button("pools_admin.create").click()
    admin.success(admin.t("pools_admin.created", name=name))
    card = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=name))
    card.get_by_role("button", name=admin.t("upload.title"), exact=True).click()
    tsv = ("INPUT:url\nhttps://example.com/cat-1.png\nhttps://example.com/cat-2.png\n"
           "not a link\n")
    card.get_by_label(admin.t("upload.paste"), exact=True).fill(tsv)
    card.get_by_role("button", name=admin.t("upload.submit"), exact=True).click()
    admin.success(admin.t("upload.created", n=2))
    bad = card.locator(".row-error")
    assert bad.count() == 1
    text = bad.inner_text()
    assert admin.t("upload.line", n=4) in text and "not a link" in text
    assert admin.t("field.url") in text          # the row's error in the viewer's language
    admin.shot(f"flow-{admin.lang}-admin-upload")
    card.get_by_role("button", name=admin.t("pools_admin.open"), exact=True).click()
    card.get_by_text(admin.t("pool.open"), exact=True).wait_for()


def take_and_submit(worker, pool: str, *, reload_first: bool) -> None:
    worker.go("/pools")
    card = worker.page.locator("section.card", has=worker.page.get_by_role("heading", name=pool))
    assert CREDIT[worker.lang] in card.inner_text()          # the credit, never the price
    assert PRICE[worker.lang] not in card.inner_text()
    card.get_by_role("button", name=worker.t("pools.take"), exact=True).click()
    worker.page.get_by_role("heading", name=worker.t("task.instructions")).wait_for()
    assignment = worker.page.url.split("/task/")[1]
    if reload_first:
        worker.page.reload()
        worker.page.get_by_role("heading", name=worker.t("task.instructions")).wait_for()
        assert worker.page.url.endswith(assignment)
        assert worker.page.get_by_role("timer").is_visible()   # the deadline still counts down
        worker.shot(f"flow-{worker.lang}-worker-task-after-reload")
    worker.page.get_by_role("heading", name="Is it a cat?").wait_for()   # the Markdown rendered
    worker.page.get_by_label("label *", exact=True).select_option("cat")
    worker.field("task.proof_url").fill("https://example.com/proof.png")
    worker.field("task.comment").fill("Clearly a cat")
    worker.button("task.submit").click()
    worker.success(worker.t("task.done"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_taxi_flow_with_three_people(people, browser, lang) -> None:
    web = people
    admin = web.person(browser, lang)
    admin.login("admin", web.admin_password)
    worker_login, worker_tmp = create_user(admin, "worker")
    manager_login, manager_tmp = create_user(admin, "manager")
    pool = unique(f"cats-{lang}")
    set_up_pool(admin, pool)

    worker = web.person(browser, lang)
    worker.first_login(worker_login, worker_tmp)
    take_and_submit(worker, pool, reload_first=True)
    worker.page.wait_for_timeout(1100)       # a new worker's pause between takes
    take_and_submit(worker, pool, reload_first=False)

    manager = web.person(browser, lang)
    manager.first_login(manager_login, manager_tmp)
    manager.go("/review")
    manager.field("common.pool").select_option(label=pool)     # other tests' work waits too
    manager.button("review.next").click()
    manager.page.get_by_role("heading", name=manager.t("review.answers")).wait_for()
    assert manager.page.get_by_role("link", name="https://example.com/proof.png").is_visible()
    assert "Clearly a cat" in manager.page.inner_text("main")
    manager.shot(f"flow-{lang}-manager-submission")
    manager.button("review.reject").click()
    manager.page.locator(".field-error",
                         has_text=manager.t("review.reject_needs_comment")).wait_for()
    manager.field("review.comment").fill("The proof does not show the cat")
    manager.button("review.reject").click()
    manager.success(manager.t("review.rejected_now"))
    manager.button("review.next").click()
    manager.page.get_by_role("button", name=manager.t("review.accept"), exact=True).wait_for()
    manager.button("review.accept").click()
    manager.success(manager.t("review.accepted_now"))

    worker.go("/my-tasks")
    main = worker.page.locator("main")
    main.get_by_text("The proof does not show the cat").wait_for()
    main.get_by_text(CREDIT[lang]).wait_for()
    assert main.get_by_text(worker.t("assignment.ACCEPTED"), exact=True).count() == 1
    assert main.get_by_text(worker.t("assignment.REJECTED"), exact=True).count() == 1
    worker.shot(f"flow-{lang}-worker-my-tasks")
    worker.go("/balance")
    worker.page.get_by_test_id("available-RUB").get_by_text(CREDIT[lang]).wait_for()
    worker.field("balance.amount", currency="RUB").fill(PRICE[lang].replace("10", "5"))
    worker.field("balance.destination").fill("4111 1111 1111 1111")
    worker.field("balance.details").fill("for the cats")
    worker.button("balance.request_submit").click()
    worker.success(worker.t("balance.requested"))
    worker.page.locator("main").get_by_text(worker.t("payout.pending"), exact=True).wait_for()

    admin.go("/security")
    if admin.page.get_by_test_id("mfa-secret").count() == 0 and web.totp is None:
        admin.button("mfa.setup").click()
    if web.totp is None:
        secret = admin.page.get_by_test_id("mfa-secret").inner_text()
        web.totp = TotpCodes(secret)
        admin.field("mfa.code").fill(web.totp.next())
        admin.button("mfa.confirm").click()
        admin.success(admin.t("mfa.enabled_now"))
        admin.page.get_by_role("heading", name=admin.t("mfa.recovery")).wait_for()
        admin.shot(f"flow-{lang}-admin-mfa-recovery")
    admin.go("/admin/payouts")
    row = admin.page.locator("tr", has_text=worker_login)
    row.get_by_role("button", name=admin.t("payouts.approve"), exact=True).click()
    # without a fresh second-factor confirmation (MFA set up just now gives one) the code is
    # asked for first, then the approval goes through
    step_up = admin.page.get_by_role("group", name=admin.t("mfa.step_up"))
    paid = admin.page.locator(".alert-success", has_text=admin.t("payouts.approved_now"))
    paid.or_(step_up).first.wait_for()
    if step_up.is_visible():
        step_up.get_by_label(admin.t("mfa.code"), exact=True).fill(web.totp.next())
        step_up.get_by_role("button", name=admin.t("mfa.confirm"), exact=True).click()
    paid.wait_for()

    worker.go("/balance")
    history = worker.page.locator("section.card", has_text=worker.t("balance.history"))
    history.get_by_text(worker.t("payout.approved"), exact=True).wait_for()
    # the destination is masked for the worker afterwards (the owner saw it in full)
    history.get_by_text("•••• 1111", exact=False).wait_for()
    assert "4111 1111 1111 1111" not in history.inner_text()
    worker.shot(f"flow-{lang}-worker-paid")
    for p in (admin, worker, manager):
        assert p.csp_violations() == []
        assert not [m for m in p.console if m.startswith("pageerror")], p.console

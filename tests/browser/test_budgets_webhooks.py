"""The owner's money and webhook screens in a browser: a requester is created and topped up
(the table shows the budget), a webhook is subscribed and its secret shown once."""

from __future__ import annotations

import pytest

from tests.browser.conftest import unique


@pytest.mark.timeout(180)
def test_owner_tops_up_a_requester_and_subscribes_a_webhook(people, browser) -> None:
    web = people
    admin = web.person(browser, "ru")
    admin.login("admin", web.admin_password)

    admin.go("/admin/budgets")
    name = unique("acme")
    admin.field("budgets.name").fill(name)
    admin.button("budgets.create").click()
    admin.success(admin.t("budgets.created"))
    admin.field("budgets.requester").select_option(label=f"{name} (RUB)")
    admin.field("balance.amount", currency="RUB").fill("150,00")
    admin.field("budgets.source").fill("счёт 7")
    admin.button("budgets.top_up_submit").click()
    admin.success(admin.t("budgets.topped_up"))
    admin.page.locator("tr", has_text=name).filter(has_text="150,00").wait_for()
    admin.shot("budgets-ru-owner")

    admin.go("/admin/webhooks")
    url = f"https://example.com/{unique('hook')}"
    admin.field("webhooks.url").fill(url)
    admin.page.get_by_label(admin.t("webhooks.kind.pool.closed"), exact=True).check()
    admin.button("webhooks.create").click()
    admin.success(admin.t("webhooks.created"))
    secret = admin.page.get_by_test_id("webhook-secret").inner_text()
    assert len(secret) >= 40
    row = admin.page.locator("tr", has_text=url)
    row.wait_for()
    row.get_by_role("button", name=admin.t("webhooks.show_deliveries"), exact=True).click()
    admin.page.get_by_role("heading", name=admin.t("webhooks.deliveries", url=url)).wait_for()
    admin.shot("webhooks-ru-owner")
    admin.page.reload()                       # the secret is not shown again
    admin.page.wait_for_selector("main h1")
    admin.page.locator("tr", has_text=url).wait_for()
    assert admin.page.get_by_test_id("webhook-secret").count() == 0
    assert secret not in admin.page.content()
    assert admin.csp_violations() == []
    assert not [m for m in admin.console if m.startswith("pageerror")], admin.console

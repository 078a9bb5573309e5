"""The fair-pay floor in the browser, in Russian: the owner sets a floor on the money screen
and the pool screen refuses to open a pool below it with a message in Russian naming both
figures; a worker sees their hourly earning on the pool card before taking. (Pools are set
up through the API; the floor is in USD so the shared stack's RUB pools are untouched.)"""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import unique

SPEC = {"input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]}


def _admin(c: httpx.Client, web) -> dict[str, str]:
    r = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _pool(c: httpx.Client, admin: dict[str, str], name: str, **pool) -> str:
    r = c.post("/api/admin/projects", headers=admin, json={
        "name": f"{name} project", "instructions": "Do it.", **SPEC})
    assert r.status_code == 201, r.text
    r = c.post("/api/admin/pools", headers=admin, json={
        "project_id": r.json()["project_id"], "name": name, **pool})
    assert r.status_code == 201, r.text
    pool_id = r.json()["pool_id"]
    r = c.post(f"/api/admin/pools/{pool_id}/tasks", headers=admin, json=[{"q": "one"}])
    assert r.status_code == 200, r.text
    r = c.put(f"/api/admin/pools/{pool_id}/worker-share", headers=admin, json={"share": "0.5"})
    assert r.status_code == 200, r.text
    return pool_id


@pytest.mark.timeout(180)
def test_the_floor_refuses_in_russian_and_the_worker_sees_the_hourly_estimate(
        people, browser) -> None:
    web = people
    with web.api() as c:
        admin_h = _admin(c, web)
        slow = unique("медленный")
        # 100 cents, half of it the worker's: 50 per task x 30 tasks an hour = 15.00 USD
        _pool(c, admin_h, slow, price_minor=100, currency="USD", expected_seconds_per_task=120)
        paid = unique("платный")
        # 10.00 RUB, 5.00 per task x 60 tasks an hour = 300.00 RUB an hour
        paid_id = _pool(c, admin_h, paid, price_minor=1000, currency="RUB",
                        expected_seconds_per_task=60)
        r = c.post(f"/api/admin/pools/{paid_id}/open", headers=admin_h)
        assert r.status_code == 200, r.text
        login = unique("worker")
        r = c.post("/api/admin/users", headers=admin_h, json={"login": login, "role": "worker"})
        assert r.status_code == 201, r.text
        temporary = r.json()["temporary_password"]

    admin = web.person(browser, "ru")
    admin.login("admin", web.admin_password)
    try:
        admin.go("/admin/share")
        floors = admin.page.locator("section.card", has=admin.page.get_by_role(
            "heading", name=admin.t("fair_pay.floor_title")))
        floors.get_by_label(admin.t("common.currency"), exact=True).fill("USD")
        floors.get_by_label(admin.t("fair_pay.floor"), exact=True).fill("30")
        floors.get_by_role("button", name=admin.t("common.save"), exact=True).click()
        admin.success(admin.t("fair_pay.floor_saved"))
        admin.page.locator("tr", has_text="USD").filter(has_text="30,00").wait_for()

        admin.go("/admin/pools")
        card = admin.page.locator("section.card", has=admin.page.get_by_role("heading", name=slow))
        card.get_by_role("alert").filter(
            has_text=admin.t("fair_pay.warning.below_fair_pay_floor")).wait_for()
        card.get_by_role("button", name=admin.t("pools_admin.open"), exact=True).click()
        refusal = card.locator(".alert-error").filter(has_text="Пул не открыт")
        refusal.wait_for()
        text = refusal.inner_text()
        assert "исполнитель заработает около 15,00" in text and "30,00" in text, text
        assert "fair-pay" not in text and "minor units" not in text, text   # not the API's English
        admin.shot("fair-pay-ru-refusal")
    finally:
        with web.api() as c:
            r = c.put("/api/admin/fair-pay/floors/USD", headers=_admin(c, web),
                      json={"floor_minor_per_hour": None})
            assert r.status_code == 200, r.text

    worker = web.person(browser, "ru")
    worker.first_login(login, temporary)
    worker.go("/pools")
    card = worker.page.locator("section.card", has=worker.page.get_by_role("heading", name=paid))
    hourly = card.locator(".hourly")
    hourly.wait_for()
    assert hourly.inner_text().startswith("≈ 300,00\u00a0₽/час"), hourly.inner_text()
    assert worker.t("pools.hourly_source.declared") in hourly.inner_text()
    worker.shot("fair-pay-ru-worker")
    for p in (admin, worker):
        assert p.csp_violations() == []
        assert not [m for m in p.console if m.startswith("pageerror")], p.console

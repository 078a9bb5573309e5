"""A worker in Russian asks support, a manager answers, and the worker's open ticket page
shows the answer (a live hint, no reload) with the Russian labels; the worker's reply opens
the ticket again."""

from __future__ import annotations

from tests.browser.test_emergency_and_screens import api_user


def test_worker_sees_the_managers_answer_in_russian(people, browser) -> None:
    web = people
    w_login, w_password = api_user(web, "worker")
    m_login, m_password = api_user(web, "manager")
    worker = web.person(browser, "ru")
    worker.login(w_login, w_password)

    worker.go("/support")
    worker.field("support.subject").fill("Не открывается картинка")
    worker.field("support.text").fill("В задании битая ссылка на изображение.")
    worker.button("support.send").click()
    worker.success(worker.t("support.ticket_sent"))
    worker.page.get_by_role("link", name="Не открывается картинка", exact=True).click()
    worker.page.get_by_role("heading", name="Не открывается картинка").wait_for()
    ticket_id = worker.page.url.split("/support/tickets/")[1]
    assert worker.t("ticket.open") == "открыто"
    worker.page.get_by_text("открыто", exact=True).wait_for()

    with web.api() as c:
        token = c.post("/api/auth/login", json={"login": m_login, "password": m_password}
                       ).json()["token"]
        r = c.post(f"/api/support/tickets/{ticket_id}/messages",
                   headers={"Authorization": f"Bearer {token}"},
                   json={"text": "Ссылку исправили, возьмите задание снова."})
        assert r.status_code == 200, r.text

    # the page the worker has open shows it without a reload
    thread = worker.page.get_by_role("list", name=worker.t("ticket.thread"))
    answer = thread.locator("li.from-staff")
    answer.wait_for()
    assert "Ссылку исправили, возьмите задание снова." in answer.inner_text()
    assert worker.t("ticket.from_support") == "Поддержка" and "Поддержка" in answer.inner_text()
    worker.page.get_by_text("есть ответ", exact=True).wait_for()
    worker.success(worker.t("ticket.answered_explain"))
    worker.shot("support-ru-worker-answer")

    worker.field("ticket.write").fill("Спасибо, но картинка всё ещё не грузится.")
    worker.button("support.send").click()
    worker.success(worker.t("ticket.sent"))
    worker.page.get_by_text("открыто", exact=True).wait_for()
    assert thread.locator("li").count() == 3

"""A worker in Russian asks support, a manager answers, and the worker's open ticket page
shows the answer (a live hint, no reload) with the Russian labels; the worker's reply opens
the ticket again."""

from __future__ import annotations

from tests.browser.conftest import unique
from tests.browser.test_emergency_and_screens import AXE_RUN, OVERFLOW, api_user


def test_worker_sees_the_managers_answer_in_russian(people, browser, node_modules) -> None:
    web = people
    w_login, w_password = api_user(web, "worker")
    m_login, m_password = api_user(web, "manager")
    worker = web.person(browser, "ru")                  # a phone-sized page
    worker.ctx.add_init_script((node_modules / "axe-core" / "axe.min.js").read_text())
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
    size = worker.page.evaluate(OVERFLOW)
    assert size["scroll"] <= size["client"], size
    axe = worker.page.evaluate(AXE_RUN)
    assert axe["passes"] > 5 and axe["violations"] == [], axe["violations"]

    worker.field("ticket.write").fill("Спасибо, но картинка всё ещё не грузится.")
    worker.button("support.send").click()
    worker.success(worker.t("ticket.sent"))
    worker.page.get_by_text("открыто", exact=True).wait_for()
    assert thread.locator("li").count() == 3


def test_task_chat_live_between_worker_and_reviewer_and_a_mute_in_russian(people,
                                                                          browser) -> None:
    web = people
    w_login, w_password = api_user(web, "worker")
    m_login, m_password = api_user(web, "manager")
    with web.api() as c:
        tok = c.post("/api/auth/login", json={"login": "admin", "password": web.admin_password})
        h = {"Authorization": f"Bearer {tok.json()['token']}"}
        project = c.post("/api/admin/projects", headers=h, json={
            "name": unique("chat"), "instructions": "Answer.",
            "input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]}).json()
        pool = c.post("/api/admin/pools", headers=h, json={
            "project_id": project["project_id"], "name": unique("chat pool"),
            "price_minor": 100, "currency": "RUB"}).json()
        c.post(f"/api/admin/pools/{pool['pool_id']}/tasks", headers=h, json=[{"q": "x"}])
        c.post(f"/api/admin/pools/{pool['pool_id']}/open", headers=h)
        wt = c.post("/api/auth/login", json={"login": w_login, "password": w_password})
        r = c.post("/api/worker/tasks/take", json={"pool_id": pool["pool_id"]},
                   headers={"Authorization": f"Bearer {wt.json()['token']}"})
        assert r.status_code == 200, r.text
        assignment = r.json()["assignment_id"]

    worker, manager = web.person(browser, "ru"), web.person(browser, "ru")
    worker.login(w_login, w_password)
    manager.login(m_login, m_password)
    worker.go(f"/task/{assignment}")
    worker.page.get_by_role("link", name=worker.t("chat.ask_reviewer"), exact=True).click()
    worker.page.get_by_role("heading", name=worker.t("chat.task_chat")).wait_for()
    manager.go(f"/chat/assignment/{assignment}")

    worker.field("chat.write").fill("Что писать, если вопрос непонятен?")
    worker.button("chat.send").click()
    thread = manager.page.get_by_role("list", name=manager.t("chat.thread"))
    thread.get_by_text("Что писать, если вопрос непонятен?").wait_for()   # live, no reload
    manager.field("chat.write").fill("Пропустите такое задание.")
    manager.button("chat.send").click()
    worker.page.get_by_text("Пропустите такое задание.").wait_for()

    manager.page.get_by_role("button", name=manager.t("chat.mute"), exact=True).click()
    manager.success(manager.t("chat.muted_done"))
    # the mute reaches the worker's open page live: one notice with its end, no form to
    # type into that would only refuse (the API's refusal is tested in tests/e2e)
    notice = worker.page.get_by_test_id("chat-muted")
    notice.wait_for()
    assert "Модератор запретил вам писать в чат до" in notice.inner_text()
    assert worker.page.locator(".alert-error").count() == 0
    assert worker.page.locator("textarea[name=chat_text]").count() == 0
    worker.shot("chat-ru-worker-muted")

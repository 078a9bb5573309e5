"""A prospective requester writes through the public contact form, the owner moves the lead
along; a worker asks the assistant (cited answer, take diagnosis), reads the terms,
downloads them as PDF and accepts them once."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest

from tests.browser.conftest import unique
from tests.browser.test_emergency_and_screens import api_user


@pytest.mark.timeout(180)
@pytest.mark.parametrize("lang", ["ru"])
def test_contact_form_assistant_and_terms(people, browser, lang) -> None:
    web = people
    visitor = web.person(browser, lang)
    visitor.go("/contact")
    message = unique("we have 5000 receipts")
    visitor.field("leads.name").fill("Вера")
    visitor.field("leads.contact").fill("vera@example.com")
    visitor.field("leads.company").fill("Чеки и Ко")
    visitor.field("leads.message").fill(message)
    visitor.button("leads.send").click()
    visitor.success(visitor.t("leads.sent"))

    admin = web.person(browser, lang)
    admin.login("admin", web.admin_password)
    admin.go("/admin/leads")
    row = admin.page.locator("tr", has_text=message)
    row.wait_for()
    row.get_by_label(admin.t("common.status"), exact=True).select_option("contacted")
    row.get_by_placeholder(admin.t("leads.notes")).fill("позвонить в понедельник")
    row.get_by_role("button", name=admin.t("common.save"), exact=True).click()
    admin.success(admin.t("leads.saved"))

    worker = web.person(browser, lang)
    worker.login(*api_user(web, "worker"))
    worker.go("/help")
    worker.field("support.question").fill("как вывести деньги на карту")
    worker.button("support.ask_submit").click()
    answer = worker.page.get_by_test_id("assistant-answer")
    answer.wait_for()
    assert "payouts" in answer.inner_text() and "Выплаты" in answer.inner_text()
    worker.button("assistant.why_cant_take").click()
    diagnosis = worker.page.get_by_test_id("diagnosis")
    diagnosis.wait_for()
    assert diagnosis.inner_text().strip()

    worker.go("/legal")
    worker.page.get_by_test_id("legal-doc").wait_for()
    heading = worker.page.get_by_test_id("legal-doc").locator("h1").inner_text()
    assert heading == "Условия для исполнителей (оферта)"
    with worker.page.expect_download() as got:
        worker.button("legal.pdf").click()
    pdf = pypdf.PdfReader(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert heading in " ".join(p.extract_text() for p in pdf.pages)
    worker.button("legal.accept").click()
    worker.success(worker.t("legal.accepted_now"))
    worker.go("/help")
    worker.go("/legal")
    accepted = worker.page.get_by_test_id("terms-acceptance")
    accepted.wait_for()                       # after a reload: recorded, not asked again
    assert "alert-success" in (accepted.get_attribute("class") or "")
    assert worker.page.get_by_role("button", name=worker.t("legal.accept")).count() == 0

"""The owner looks into a dead letter from the browser and replays it; it is applied once."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import nats
import pytest

from contracts.envelope import new_envelope
from contracts.events import PoolOpened
from servicekit.consumer import dlq_headers


async def _dead_letter(web) -> int:
    stack = web.stack
    nc = await nats.connect(stack.nats_url.split(","), user="ops",
                            password=stack.nats_passwords["ops"])
    try:
        env = new_envelope(PoolOpened(pool_id=f"p-web-dlq-{uuid.uuid4().hex[:8]}",
                                      project_id="pr", price_minor=900, currency="RUB",
                                      opened_at=datetime.now(UTC)), producer="tasks")
        ack = await nc.jetstream().publish(
            "dlq.ledger.ledger__pool-opened", env.model_dump_json().encode(),
            headers=dlq_headers(reason="handler_error", error_type="RuntimeError",
                                error_message="put here by the browser test",
                                consumer="ledger__pool-opened", stream="TASK",
                                subject="task.pool_opened", seq=uuid.uuid4().int % 10**9,
                                deliveries=8))
        return int(ack.seq)
    finally:
        await nc.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_owner_replays_a_dead_letter(people, browser, lang) -> None:
    web = people
    # on a thread of its own: Playwright's synchronous API owns this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        seq = pool.submit(asyncio.run, _dead_letter(web)).result()
    admin = web.person(browser, lang)
    admin.login("admin", web.admin_password)
    admin.go("/admin/dead-letters")
    row = admin.page.locator("tr", has_text="ledger__pool-opened").filter(
        has=admin.page.get_by_text(str(seq), exact=True))
    row.wait_for()
    row.get_by_role("button", name=admin.t("dlq.show"), exact=True).click()
    payload = admin.page.get_by_test_id("dead-letter-payload")
    payload.wait_for()
    assert "Dlq-Consumer: ledger__pool-opened" in payload.inner_text()
    assert '"type": "task.pool_opened"' in payload.inner_text()
    row.get_by_role("button", name=admin.t("dlq.replay"), exact=True).click()
    admin.success(admin.t("dlq.replayed_now", seq=seq))
    assert row.count() == 0  # applied and removed from the list

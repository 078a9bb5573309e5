"""The assistant's take diagnosis through the gateway (each of the five blockers), the
public lead form's protections, and the legal documents behind login."""

from __future__ import annotations

import asyncio
import io
import uuid

import httpx
import pypdf

from servicekit.testing import eventually

SPEC = {"input_spec": [{"name": "q"}], "output_spec": [{"name": "a"}]}


async def diagnosis(stack, worker, pool_id: str | None = None, lang: str = "en") -> dict:
    params = {"lang": lang} | ({"pool_id": pool_id} if pool_id else {})
    r = await stack.client.get("/api/assistant/diagnose", headers=worker.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_diagnosis_names_each_blocker(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    rows = [{"q": str(i)} for i in range(6)]
    open_pool = await stack.pool(**SPEC, rows=rows, price_minor=10, name="open one")

    # the active-task limit: a new worker holds 3 at most
    w = await stack.user("worker")
    assert (await diagnosis(stack, w, open_pool))["can_take"]
    for _ in range(3):
        async def took() -> bool:
            r = await c.post("/api/worker/tasks/take", headers=w.headers,
                             json={"pool_id": open_pool})
            return r.status_code == 200
        await eventually(took)
    d = await diagnosis(stack, w, open_pool)
    assert not d["can_take"] and d["blocker"]["kind"] == "active_limit"
    assert (d["blocker"]["active"], d["blocker"]["max_active"]) == (3, 3)

    # the pause between takes, right after a take
    w = await stack.user("worker")
    r = await c.post("/api/worker/tasks/take", headers=w.headers, json={"pool_id": open_pool})
    assert r.status_code == 200, r.text
    d = await diagnosis(stack, w, open_pool, lang="ru")
    assert d["blocker"]["kind"] == "pause" and d["blocker"]["pause_left_s"] > 0
    assert "паузы" in d["blocker"]["message"]

    # a closed pool (a draft that was never opened)
    draft = await stack.pool(**SPEC, price_minor=10, name="draft one")
    d = await diagnosis(stack, await stack.user("worker"), draft)
    assert d["blocker"]["kind"] == "closed_pool" and d["blocker"]["pool_id"] == draft

    # a missing skill
    skilled = await stack.pool(**SPEC, rows=rows, price_minor=10, name="skilled",
                               skill_filters=[{"skill": "english", "op": "gte", "value": 50}])
    d = await diagnosis(stack, await stack.user("worker"), skilled)
    assert d["blocker"]["kind"] == "missing_skill" and d["blocker"]["skill"] == "english"

    # a pool restriction from a rule: named with its scope, never its private comment
    guarded = await stack.pool(**SPEC, rows=rows, price_minor=10, name="guarded")
    secret = f"private-{uuid.uuid4().hex[:8]}"
    r = await c.post("/api/admin/rules", headers=admin, json={
        "name": "one answer", "scope": "pool", "pool_id": guarded,
        "collector": {"kind": "submitted_answers"},
        "conditions": [{"field": "submitted_count_24h", "operator": ">=", "value": 1}],
        "action": {"type": "restriction", "scope": "pool", "duration_unit": "days",
                   "duration": 1, "private_comment": secret}})
    assert r.status_code == 201, r.text
    w = await stack.user("worker")
    taken = await c.post("/api/worker/tasks/take", headers=w.headers, json={"pool_id": guarded})
    assert taken.status_code == 200, taken.text
    r = await c.post(f"/api/worker/assignments/{taken.json()['assignment_id']}/submit",
                     headers=w.headers, json={"answers": {"a": "x"}})
    assert r.status_code == 200, r.text

    async def restricted() -> dict | None:
        d = await diagnosis(stack, w, guarded)
        return d if d["blocker"] and d["blocker"]["kind"] == "restriction" else None

    d = await eventually(restricted)
    assert d["blocker"]["scope"] == "pool" and d["blocker"]["until"]
    assert secret not in str(d)

    # the assistant adds the diagnosis to its answer about refused takes
    r = await c.post("/api/assistant/ask", headers=w.headers, params={"pool_id": guarded},
                     json={"question": "why can't I take tasks?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"]["citation"]["article_id"] == "cant-take"
    assert body["diagnosis"]["blocker"]["kind"] == "restriction"
    assert secret not in r.text


async def test_the_assistant_cites_or_hands_over_and_staff_get_no_diagnosis(stack) -> None:
    c = stack.client
    manager = await stack.user("manager")
    r = await c.post("/api/assistant/ask", headers=manager.headers,
                     json={"question": "Почему я не могу взять задание?"})
    assert r.status_code == 200, r.text
    assert r.json()["answer"]["citation"]["lang"] == "ru" and r.json()["diagnosis"] is None
    worker = await stack.user("worker")
    r = await c.post("/api/assistant/ask", headers=worker.headers,
                     json={"question": "what is the weather in Paris today?", "hand_over": True})
    answer = r.json()["answer"]
    assert not answer["answered"] and answer["ticket_id"]
    r = await c.get("/api/support/tickets", headers=worker.headers)
    assert [t["ticket_id"] for t in r.json()["items"]] == [answer["ticket_id"]]
    r = await c.get("/api/assistant/articles/mfa", headers=worker.headers,
                    params={"lang": "en"})
    assert r.status_code == 200 and r.json()["title"].startswith("Two-factor")
    assert (await c.post("/api/assistant/ask", json={"question": "hi"})).status_code == 401


async def test_twenty_leads_from_one_address_are_limited_and_a_honeypot_is_dropped(
        stack) -> None:
    admin = stack.admin.headers
    # an address of its own (the shared client's and the API fuzzing's are others') and the
    # leads counted before: the e2e files share one stack, and the fuzzing posts leads too
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.gateway.app,
                                                        client=("198.51.100.23", 40000)),
                          base_url="http://gateway.test", timeout=30)
    mark = uuid.uuid4().hex[:8]
    lead = {"name": "Boris", "contact": "+7 900 000-00-00", "company": "Labs",
            "message": "We want to label 50k receipts"}
    r = await c.get("/api/admin/leads", headers=admin)
    before = r.json()["total"]
    r = await c.post("/api/leads", json=lead | {"website": "http://buy-pills.example"})
    assert r.status_code == 202 and r.json() == {"accepted": True}, r.text
    r = await c.get("/api/admin/leads", headers=admin)
    assert r.status_code == 200 and r.json()["total"] == before     # the honeypot hit: dropped
    codes: list[int] = []
    for i in range(19):
        r = await c.post("/api/leads", json=lead | {"message": f"{mark} message {i}"})
        codes.append(r.status_code)
        if r.status_code == 428:
            err = r.json()["error"]
            assert err["code"] == "captcha_required" and err["details"]["image_png_base64"]
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) > 0
            assert r.json()["error"]["code"] == "lead_rate_limited"
    assert codes[:2] == [202, 202]                  # 3 posts with the honeypot's, then a captcha
    assert set(codes[2:9]) == {428} and set(codes[9:]) == {429}, codes
    r = await c.get("/api/admin/leads", headers=admin, params={"status": "new"})
    items = [x for x in r.json()["items"] if x["message"].startswith(mark)]
    assert [x["message"] for x in items] == [f"{mark} message 1", f"{mark} message 0"]
    r = await c.patch(f"/api/admin/leads/{items[0]['lead_id']}", headers=admin,
                      json={"status": "contacted", "notes": "call back on Monday"})
    assert r.status_code == 200 and r.json()["status"] == "contacted", r.text
    worker = await stack.user("worker")
    assert (await c.get("/api/admin/leads", headers=worker.headers)).status_code == 403
    r = await c.patch(f"/api/admin/leads/{items[0]['lead_id']}", headers=admin,
                      json={"status": "maybe"})
    assert r.status_code == 422
    await c.aclose()


async def test_legal_documents_behind_login_and_the_terms_accepted_once(stack) -> None:
    c = stack.client
    assert (await c.get("/api/legal")).status_code == 401
    worker = await stack.user("worker")
    r = await c.get("/api/legal", headers=worker.headers, params={"lang": "en"})
    assert [d["doc_id"] for d in r.json()["items"]] == ["terms", "privacy", "legal-minimum"]
    r = await c.get("/api/legal/privacy", headers=worker.headers, params={"lang": "ru"})
    assert r.status_code == 200 and "<h1>Политика конфиденциальности</h1>" in r.json()["html"]
    r = await c.get("/api/legal/terms/pdf", headers=worker.headers, params={"lang": "ru"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    assert "Условия для исполнителей" in text
    assert (await c.get("/api/legal/nope", headers=worker.headers)).status_code == 404
    r = await c.get("/api/worker/terms", headers=worker.headers)
    status = r.json()
    assert status["needs_acceptance"]
    r = await c.post("/api/worker/terms/accept", headers=worker.headers,
                     json={"version": status["current_version"]})
    assert r.status_code == 200 and not r.json()["needs_acceptance"], r.text
    await asyncio.sleep(0.01)
    r2 = await c.post("/api/worker/terms/accept", headers=worker.headers,
                      json={"version": status["current_version"]})
    assert r2.json()["accepted_at"] == r.json()["accepted_at"]
    r = await c.post("/api/worker/terms/accept", headers=worker.headers, json={"version": "old"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "terms_version_outdated"

"""The public lead form on a real PostgreSQL: the per-address limit, the honeypot, the
captcha after a few posts, and the admin list."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.errors import NotFound, ServiceError
from support_service import leads
from support_service.db import lead_captchas
from support_service.db import leads as leads_table

GATEWAY = Actor(user_id="gateway", role="admin")


def post(address: str = "203.0.113.7", **kw: str) -> rpc.LeadSubmit:
    fields = {"name": "Anna", "contact": "anna@example.com", "company": "ACME",
              "message": "We need 10k images labelled"} | kw
    return rpc.LeadSubmit(actor=GATEWAY, address=address, **fields)


async def answer_of(ctx, challenge_id: str) -> str:
    async with ctx.read() as r:
        return (await r.conn.execute(select(lead_captchas.c.answer).where(
            lead_captchas.c.challenge_id == challenge_id))).scalar_one()


async def count_leads(ctx) -> int:
    async with ctx.read() as r:
        return (await r.conn.execute(select(func.count()).select_from(leads_table))).scalar_one()


async def test_twenty_posts_from_one_address_are_limited_even_with_solved_captchas(
        pg_ctx, clock) -> None:
    s = pg_ctx.settings
    outcomes: list[str] = []
    challenge: dict | None = None
    for _ in range(20):
        req = post()
        if challenge is not None:
            req = post(captcha_id=challenge["challenge_id"],
                       captcha_answer=await answer_of(pg_ctx, challenge["challenge_id"]))
            challenge = None
        try:
            await leads.submit_lead(req, pg_ctx)
            outcomes.append("accepted")
        except ServiceError as e:
            outcomes.append(e.code)
            if e.code == "captcha_required":
                challenge = e.details
                assert e.status == 428 and e.details["image_png_base64"]
            else:
                assert e.status == 429 and e.details["retry_after_s"] > 0
        clock.advance(1)
    assert outcomes[:s.lead_captcha_after] == ["accepted"] * s.lead_captcha_after
    assert outcomes.count("lead_rate_limited") == 20 - s.lead_max_posts
    assert outcomes[s.lead_max_posts:] == ["lead_rate_limited"] * (20 - s.lead_max_posts)
    accepted = outcomes.count("accepted")
    assert await count_leads(pg_ctx) == accepted > s.lead_captcha_after
    # another address is not limited by this one
    await leads.submit_lead(post(address="198.51.100.1"), pg_ctx)
    # and the window slides: an hour later the first address may post again
    clock.advance(s.lead_window_s)
    await leads.submit_lead(post(), pg_ctx)


async def test_a_honeypot_hit_is_answered_as_accepted_and_dropped(pg_ctx) -> None:
    got = await leads.submit_lead(post(website="http://spam.example"), pg_ctx)
    assert got.accepted
    assert await count_leads(pg_ctx) == 0


async def test_a_wrong_or_reused_captcha_gets_a_new_challenge(pg_ctx) -> None:
    for _ in range(pg_ctx.settings.lead_captcha_after):
        await leads.submit_lead(post(), pg_ctx)
    with pytest.raises(ServiceError) as first:
        await leads.submit_lead(post(), pg_ctx)
    cid = first.value.details["challenge_id"]
    with pytest.raises(ServiceError) as wrong:
        await leads.submit_lead(post(captcha_id=cid, captcha_answer="nope"), pg_ctx)
    assert wrong.value.code == "captcha_wrong"
    # the first challenge is used up even though it was answered wrongly
    right = await answer_of(pg_ctx, cid)
    with pytest.raises(ServiceError):
        await leads.submit_lead(post(captcha_id=cid, captcha_answer=right), pg_ctx)
    # a challenge shown to another address does not count for this one
    other = wrong.value.details["challenge_id"]
    for _ in range(pg_ctx.settings.lead_captcha_after):
        await leads.submit_lead(post(address="192.0.2.99"), pg_ctx)
    with pytest.raises(ServiceError):
        await leads.submit_lead(post(address="192.0.2.99", captcha_id=other,
                                     captcha_answer=await answer_of(pg_ctx, other)), pg_ctx)


async def test_admins_list_and_move_leads(pg_ctx, clock) -> None:
    for name in ("A", "B"):
        await leads.submit_lead(post(address=f"10.0.0.{ord(name)}", name=name), pg_ctx)
        clock.advance(1)
    page = await leads.list_leads(rpc.LeadList(actor=GATEWAY), pg_ctx)
    assert [x.name for x in page.items] == ["B", "A"] and page.total == 2
    assert all(x.status == "new" for x in page.items)
    lead = page.items[1]
    moved = await leads.update_lead(rpc.LeadUpdate(actor=GATEWAY, lead_id=lead.lead_id,
                                                   status="contacted", notes="called"), pg_ctx)
    assert (moved.status, moved.notes) == ("contacted", "called")
    won = await leads.update_lead(rpc.LeadUpdate(actor=GATEWAY, lead_id=lead.lead_id,
                                                 status="won"), pg_ctx)
    assert (won.status, won.notes) == ("won", "called")
    only = await leads.list_leads(rpc.LeadList(actor=GATEWAY, status="won"), pg_ctx)
    assert [x.lead_id for x in only.items] == [lead.lead_id]
    with pytest.raises(NotFound):
        await leads.update_lead(rpc.LeadUpdate(actor=GATEWAY, lead_id="nope", status="lost"),
                                pg_ctx)
    with pytest.raises(ValueError):
        rpc.LeadUpdate(actor=GATEWAY, lead_id=lead.lead_id, status="maybe")  # type: ignore[arg-type]

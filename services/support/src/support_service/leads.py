"""Leads: messages of prospective requesters from the public form, and their admin list.

The form is open to anyone, so each post is checked against its client address (set by
the gateway, stored only as a SHA-256 hash): at most ``lead_max_posts`` posts in a sliding
``lead_window_s`` (then 429 with the seconds to wait), a captcha from the
``lead_captcha_after``-th post on (428 with a single-use challenge image), and a honeypot
field (``website``) that a person never sees: a post that fills it is answered as
accepted and dropped. Every post that is not refused by the limit counts as an attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import uuid
from datetime import datetime, timedelta

from contracts.rpc import support as rpc
from servicekit.errors import NotFound, ServiceError
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from support_service.context import SupportContext
from support_service.store import SupportStore

router = Router()

# No 0/O, 1/I/L: they are hard to tell apart in a distorted image (as tasks' captcha).
CAPTCHA_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def address_hash(address: str, key: str) -> str:
    """A keyed hash (HMAC-SHA256) of the client's address: an unkeyed hash of an IPv4
    address is undone by trying all 2^32 of them; without the key, nobody holding the
    database can tell which address posted."""
    return hmac.new(key.encode(), f"lead-address:{address}".encode(),
                    hashlib.sha256).hexdigest()


def captcha_text(length: int = 5) -> str:
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(length))


def captcha_matches(expected: str, answer: str) -> bool:
    return secrets.compare_digest(expected.strip().casefold().encode(),
                                  answer.strip().casefold().encode())


def render_png(text: str) -> str:
    """The captcha image of ``text`` (the ``captcha`` library), base64 PNG."""
    from captcha.image import ImageCaptcha

    png = ImageCaptcha(width=160, height=60).generate(text, format="png").getvalue()
    return base64.b64encode(png).decode()


class LeadRateLimited(ServiceError):
    status = 429

    def __init__(self, wait_s: int) -> None:
        super().__init__("lead_rate_limited",
                         f"too many messages from this address: try again in {wait_s} s",
                         details={"retry_after_s": wait_s})


class LeadCaptchaRequired(ServiceError):
    """Raised once the challenge is committed; the image is rendered after the commit."""

    status = 428

    def __init__(self, challenge_id: str, text: str, ttl_s: int, *, wrong: bool) -> None:
        super().__init__("captcha_wrong" if wrong else "captcha_required",
                         "the captcha answer was wrong: solve the new one" if wrong
                         else "solve the captcha to send the message",
                         details={"challenge_id": challenge_id, "expires_in_s": ttl_s})
        self.text = text

    def with_image(self) -> LeadCaptchaRequired:
        self.details["image_png_base64"] = render_png(self.text)
        return self


async def _captcha_refusal(uow: UnitOfWork[SupportStore], ctx: SupportContext,
                           req: rpc.LeadSubmit, who: str,
                           now: datetime) -> LeadCaptchaRequired | None:
    """None when the post carries the right answer to its address's open challenge;
    otherwise a new challenge (stored) and the refusal to raise after the commit."""
    if req.captcha_id and req.captcha_answer:
        expected = await uow.store.use_lead_captcha(req.captcha_id, who, now)
        if expected is not None and captcha_matches(expected, req.captcha_answer):
            return None
    ttl = ctx.settings.lead_captcha_ttl_s
    challenge_id, text = str(uuid.uuid4()), captcha_text()
    await uow.store.add_lead_captcha(challenge_id, who, text, now + timedelta(seconds=ttl))
    return LeadCaptchaRequired(challenge_id, text, ttl, wrong=bool(req.captcha_id))


@router.rpc(rpc.SUBMIT_LEAD)
async def submit_lead(req: rpc.LeadSubmit, ctx: SupportContext) -> rpc.LeadAccepted:
    """A post of the public form: limited per address, honeypot, captcha after a few."""
    s = ctx.settings
    now = ctx.clock()
    who = address_hash(req.address, s.lead_address_key.get_secret_value())
    window = timedelta(seconds=s.lead_window_s)
    refusal: ServiceError | None = None
    async with ctx.uow() as uow:
        await uow.store.lock_address(who)
        await uow.store.forget_lead_attempts(who, now - window)
        count, oldest = await uow.store.lead_attempts_since(who, now - window)
        if count >= s.lead_max_posts:
            wait = (oldest + window - now).total_seconds() if oldest else s.lead_window_s
            refusal = LeadRateLimited(max(1, math.ceil(wait)))
        else:
            await uow.store.add_lead_attempt(who, now)
            if req.website.strip():
                return rpc.LeadAccepted()  # the honeypot: dropped, answered as accepted
            if count >= s.lead_captcha_after:
                refusal = await _captcha_refusal(uow, ctx, req, who, now)
            if refusal is None:
                await uow.store.add_lead({
                    "lead_id": str(uuid.uuid4()), "name": req.name.strip(),
                    "contact": req.contact.strip(), "company": req.company.strip(),
                    "message": req.message.strip(), "status": "new", "notes": "",
                    "address_hash": who, "created_at": now, "updated_at": now})
    if isinstance(refusal, LeadCaptchaRequired):
        raise refusal.with_image()
    if refusal is not None:
        raise refusal
    return rpc.LeadAccepted()


@router.rpc(rpc.LIST_LEADS)
async def list_leads(req: rpc.LeadList, ctx: SupportContext) -> rpc.Leads:
    """Leads, newest first, optionally of one status."""
    async with ctx.read() as r:
        items, total = await r.store.list_leads(status=req.status, limit=req.page.limit,
                                                offset=req.page.offset)
    return rpc.Leads(items=items, total=total)


@router.rpc(rpc.UPDATE_LEAD)
async def update_lead(req: rpc.LeadUpdate, ctx: SupportContext) -> rpc.Lead:
    """Move a lead along (new / contacted / won / lost) and keep notes on it."""
    changes: dict[str, object] = {"updated_at": ctx.clock()}
    if req.status is not None:
        changes["status"] = req.status
    if req.notes is not None:
        changes["notes"] = req.notes
    async with ctx.uow() as uow:
        lead = await uow.store.update_lead(req.lead_id, changes)
    if lead is None:
        raise NotFound("lead_not_found", "no such lead")
    return lead

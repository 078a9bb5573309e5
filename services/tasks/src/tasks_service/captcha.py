"""Captchas at take time: every Nth take of a worker in a pool (the pool's captcha
frequency) first needs a solved captcha; the challenge is single-use and expires."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

from contracts.events import CaptchaAnswered
from contracts.rpc import tasks as rpc
from servicekit.errors import Conflict, NotFound, ServiceError
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from tasks_service import domain
from tasks_service.context import TasksContext
from tasks_service.store import Challenge, TasksStore

router = Router()


def render_png(text: str) -> str:
    """The captcha image of ``text``, base64 PNG."""
    from captcha.image import ImageCaptcha

    png = ImageCaptcha(width=160, height=60).generate(text, format="png").getvalue()
    return base64.b64encode(png).decode()


class CaptchaRequired(ServiceError):
    """The take's refusal (428) once its challenge is stored; the image is added by
    :meth:`with_image` after the commit, so no lock waits on the rendering."""

    status = 428

    def __init__(self, challenge: Challenge, ttl_s: int) -> None:
        super().__init__("captcha_required", "solve the captcha before taking the next task",
                         details={"challenge_id": challenge.challenge_id,
                                  "expires_in_s": ttl_s})
        self.text = challenge.answer

    def with_image(self) -> CaptchaRequired:
        self.details["image_png_base64"] = render_png(self.text)
        return self


async def challenge_for_take(uow: UnitOfWork[TasksStore], ctx: TasksContext, *,
                             worker_id: str, pool_id: str, project_id: str, frequency: str,
                             now: datetime) -> CaptchaRequired | None:
    """Count the take; when a captcha is due for it (and not solved yet), store a challenge
    and return the refusal to send once it is committed."""
    if domain.CAPTCHA_EVERY.get(frequency, 0) == 0:
        return None
    takes, passed_for = await uow.store.count_take(worker_id, pool_id)
    nxt = takes + 1
    if domain.captcha_due(frequency, nxt) and passed_for != nxt:
        ttl = ctx.settings.captcha_ttl_s
        challenge = Challenge(challenge_id=str(uuid.uuid4()), worker_id=worker_id,
                              pool_id=pool_id, project_id=project_id,
                              answer=domain.captcha_text(), for_take=nxt,
                              expires_at=now + timedelta(seconds=ttl), used_at=None)
        await uow.store.add_challenge(challenge, now)
        return CaptchaRequired(challenge, ttl)
    await uow.store.set_takes(worker_id, pool_id, nxt)
    return None


@router.rpc(rpc.CAPTCHA_ANSWER)
async def captcha_answer(req: rpc.CaptchaAnswer, ctx: TasksContext) -> rpc.CaptchaResult:
    """Check a captcha answer (single use, expiring); a right one lets the take proceed."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        ch = await uow.store.lock_challenge(req.challenge_id)
        if ch is None or ch.worker_id != req.actor.user_id:
            raise NotFound("challenge_not_found", "no such captcha challenge")
        if ch.used_at is not None:
            raise Conflict("challenge_used",
                           "this captcha was already answered; take again for a new one")
        if ch.expires_at <= now:
            raise Conflict("challenge_expired", "this captcha expired; take again for a new one")
        correct = domain.captcha_matches(ch.answer, req.answer)
        await uow.store.use_challenge(ch.challenge_id, now)
        if correct:
            await uow.store.pass_captcha(ch.worker_id, ch.pool_id, ch.for_take)
        uow.record(CaptchaAnswered(challenge_id=ch.challenge_id, worker_id=ch.worker_id,
                                   pool_id=ch.pool_id, project_id=ch.project_id,
                                   correct=correct, answered_at=now))
    return rpc.CaptchaResult(correct=correct)

# mypy: disable-error-code="valid-type"
"""The assistant (support's knowledge base, cited) and the take diagnosis.

"Why can't I take tasks?" is answered from this worker's own facts, which only the tasks
service has and only the gateway may combine (services do not call each other): the
worker's profile (active assignments, last take, restrictions in force, skills), the trust
level's limits, and the open pools. The diagnosis names the one blocker a take would meet
first, in the order the take checks them: the active-task limit, the pause between takes,
a closed pool, a restriction (its scope and end, never staff's private comment), a missing
skill, no free task. It carries no price or share.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from contracts.rpc import Actor, Page
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import AnyActor, Rpc, WorkerActor
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.worker_views import GATEWAY_ACTOR, take_state
from servicekit.rpc import RpcClient

router = APIRouter(tags=["assistant"])

Lang = support_rpc.Lang
BlockerKind = Literal["active_limit", "pause", "closed_pool", "restriction", "missing_skill",
                      "no_free_tasks"]

AskBody = body_of(support_rpc.AskAssistant, "AssistantQuestionBody")


class Blocker(BaseModel):
    """One reason a take is refused, with what the worker can do about it."""

    kind: BlockerKind
    message: str
    pool_id: str | None = None
    pool_name: str | None = None
    active: int | None = None
    max_active: int | None = None
    pause_left_s: float | None = None
    scope: Literal["pool", "project", "all"] | None = None
    until: datetime | None = Field(None, description="a restriction's end; null: until lifted")
    skill: str | None = None
    required: str | None = Field(None, description="the skill filter the worker fails")


class Diagnosis(BaseModel):
    can_take: bool
    trust_level: tasks_rpc.TrustLevel
    blocker: Blocker | None = Field(None, description="the first thing a take would meet")
    per_pool: list[Blocker] = Field([], description="without a pool: why each open pool "
                                                    "is out of reach (when none is)")


class AssistantReply(BaseModel):
    answer: support_rpc.AssistantAnswer
    diagnosis: Diagnosis | None = None


_TEXT: dict[str, dict[BlockerKind, str]] = {
    "en": {
        "active_limit": "You hold {active} active assignments, the most your trust level "
                        "allows ({max_active}): submit or skip one first.",
        "pause": "Your trust level needs a pause between takes: wait {pause_left_s:.1f} s.",
        "closed_pool": "The pool {pool} is not open (it is {status}).",
        "restriction": "You are restricted ({scope}) in {pool} until {until}.",
        "missing_skill": "The pool {pool} admits only workers with the skill {skill} "
                         "({required}).",
        "no_free_tasks": "No free task is left in {pool} for you right now.",
    },
    "ru": {
        "active_limit": "У вас {active} активных заданий — максимум для вашего уровня доверия "
                        "({max_active}): сначала отправьте или пропустите одно.",
        "pause": "Уровень доверия требует паузы между взятиями: подождите {pause_left_s:.1f} с.",
        "closed_pool": "Пул {pool} не открыт (его состояние: {status}).",
        "restriction": "Вы ограничены ({scope}) в {pool} до {until}.",
        "missing_skill": "Пул {pool} допускает только исполнителей с навыком {skill} "
                         "({required}).",
        "no_free_tasks": "В пуле {pool} сейчас нет свободных заданий для вас.",
    },
}
_FOREVER = {"en": "further notice", "ru": "снятия"}
_EVERYWHERE = {"en": "the whole platform", "ru": "на всей платформе"}


def _requirement(f: tasks_rpc.SkillFilter, lang: str) -> str:
    if f.op == "absent":
        return "must not have it" if lang == "en" else "без этого навыка"
    return f">= {f.value or 0}"


def failing_skill(filters: list[tasks_rpc.SkillFilter],
                  skills: dict[str, int]) -> tasks_rpc.SkillFilter | None:
    """The first skill filter the worker fails (the take's ``skills_pass``), or None."""
    for f in filters:
        if f.op == "absent":
            if f.skill in skills:
                return f
        elif skills.get(f.skill) is None or skills[f.skill] < (f.value or 0):
            return f
    return None


def blocking_restriction(found: list[tasks_rpc.Restriction], pool: tasks_rpc.Pool,
                         now: datetime) -> tasks_rpc.Restriction | None:
    for r in found:
        if r.until is not None and r.until <= now:
            continue
        if (r.scope == "all" or (r.scope == "pool" and r.pool_id == pool.pool_id)
                or (r.scope == "project" and r.project_id == pool.project_id)):
            return r
    return None


def _blocker(kind: BlockerKind, lang: str, *, pool: tasks_rpc.Pool | None = None,
             **facts: object) -> Blocker:
    name = pool.name if pool else _EVERYWHERE[lang]
    fmt = {"pool": f"«{name}»" if pool else name, "status": pool.status if pool else "",
           **facts}
    if kind == "restriction":
        fmt["until"] = facts.get("until") or _FOREVER[lang]
    return Blocker(kind=kind, message=_TEXT[lang][kind].format(**fmt),
                   pool_id=pool.pool_id if pool else None, pool_name=pool.name if pool else None,
                   **{k: v for k, v in facts.items() if k in Blocker.model_fields})


def pool_blocker(pool: tasks_rpc.Pool, profile: tasks_rpc.WorkerProfile, now: datetime,
                 lang: str, free: int | None) -> Blocker | None:
    """Why this worker cannot take from ``pool`` (past the trust-level limits), or None."""
    if pool.status != "open":
        return _blocker("closed_pool", lang, pool=pool)
    r = blocking_restriction(profile.restrictions, pool, now)
    if r is not None:
        return _blocker("restriction", lang, pool=None if r.scope == "all" else pool,
                        scope=r.scope, until=r.until)
    f = failing_skill(pool.skill_filters, profile.skills)
    if f is not None:
        return _blocker("missing_skill", lang, pool=pool, skill=f.skill,
                        required=_requirement(f, lang))
    if not free:
        return _blocker("no_free_tasks", lang, pool=pool)
    return None


def diagnose(profile: tasks_rpc.WorkerProfile, limits: tasks_rpc.TrustLimits,
             pools: list[tasks_rpc.Pool], free: dict[str, int], now: datetime, lang: str,
             *, pool_id: str | None) -> Diagnosis:
    """The first blocker a take (from ``pool_id``, or from any open pool) would meet."""
    state = take_state(profile, limits, now)
    out = Diagnosis(can_take=False, trust_level=profile.trust_level)
    if state.blocked_by == "max_active":
        out.blocker = _blocker("active_limit", lang, active=state.active,
                               max_active=state.max_active)
        return out
    if state.blocked_by == "min_pause":
        out.blocker = _blocker("pause", lang, pause_left_s=state.pause_left_s)
        return out
    if pool_id is not None:
        pool = next(p for p in pools if p.pool_id == pool_id)
        out.blocker = pool_blocker(pool, profile, now, lang, free.get(pool_id))
        out.can_take = out.blocker is None
        return out
    found = [pool_blocker(p, profile, now, lang, free.get(p.pool_id))
             for p in pools if p.status == "open"]
    if any(b is None for b in found):
        out.can_take = True
        return out
    out.per_pool = [b for b in found if b is not None]
    no_open = {"en": "No pool is open right now.", "ru": "Сейчас нет открытых пулов."}
    out.blocker = (out.per_pool[0] if out.per_pool
                   else Blocker(kind="closed_pool", message=no_open[lang]))
    return out


async def worker_diagnosis(rpc: RpcClient, actor: Actor, lang: str,
                           pool_id: str | None) -> Diagnosis:
    profile, limits, available = await asyncio.gather(
        rpc.call(tasks_rpc.GET_WORKER_PROFILE, tasks_rpc.WorkerProfileGet(
            actor=actor, worker_id=actor.user_id)),
        rpc.call(tasks_rpc.GET_TRUST_LIMITS, tasks_rpc.TrustLimitsGet(actor=GATEWAY_ACTOR)),
        rpc.call(tasks_rpc.AVAILABLE_POOLS, tasks_rpc.AvailablePools(
            actor=actor, page=Page(limit=500))))
    if pool_id is not None:
        pools = [await rpc.call(tasks_rpc.GET_POOL, tasks_rpc.PoolGet(
            actor=GATEWAY_ACTOR, pool_id=pool_id))]
    else:
        pools = (await rpc.call(tasks_rpc.LIST_POOLS, tasks_rpc.PoolList(
            actor=GATEWAY_ACTOR, status="open", page=Page(limit=500)))).items
    free = {p.pool_id: p.available_tasks for p in available.items}
    return diagnose(profile, limits, pools, free, datetime.now(UTC), lang, pool_id=pool_id)


@router.post("/assistant/ask", response_model=AssistantReply,
             summary="Ask the assistant: a cited article, or the question handed to a person "
                     "as a ticket; a worker asking why a take fails gets the diagnosis too")
async def ask(actor: AnyActor, rpc: Rpc, body: AskBody,
              pool_id: Annotated[tasks_rpc.Id | None, Query()] = None) -> AssistantReply:
    answer = await rpc.call(support_rpc.ASK, request_of(body, support_rpc.AskAssistant,
                                                        actor=actor))
    diagnosis = None
    if answer.answered and answer.diagnose and actor.role == "worker":
        diagnosis = await worker_diagnosis(rpc, actor, answer.lang, pool_id)
    return AssistantReply(answer=answer, diagnosis=diagnosis)


@router.get("/assistant/diagnose", response_model=Diagnosis,
            summary="Why I cannot take a task now (from a pool, or from any open pool)")
async def diagnose_me(actor: WorkerActor, rpc: Rpc,
                      pool_id: Annotated[tasks_rpc.Id | None, Query()] = None,
                      lang: Annotated[Lang, Query()] = "ru") -> Diagnosis:
    return await worker_diagnosis(rpc, actor, lang, pool_id)


@router.get("/assistant/articles", response_model=support_rpc.Articles,
            summary="The knowledge base's articles in one language")
async def articles(actor: AnyActor, rpc: Rpc,
                   lang: Annotated[Lang, Query()] = "ru") -> support_rpc.Articles:
    return await rpc.call(support_rpc.ASSISTANT_ARTICLES,
                          support_rpc.ArticleList(actor=actor, lang=lang))


@router.get("/assistant/articles/{article_id}", response_model=support_rpc.Article,
            summary="One article of the knowledge base (what an answer cites)")
async def article(actor: AnyActor, rpc: Rpc, article_id: tasks_rpc.Id,
                  lang: Annotated[Lang, Query()] = "ru") -> support_rpc.Article:
    return await rpc.call(support_rpc.ASSISTANT_ARTICLE,
                          support_rpc.ArticleGet(actor=actor, article_id=article_id, lang=lang))

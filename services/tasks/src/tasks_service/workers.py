"""Workers: profiles (created lazily), trust levels and their limits, and the restrictions
and skills that the rules service applies (``rules.restriction.*``, ``rules.skill.set``)."""

from __future__ import annotations

from datetime import datetime

from contracts.envelope import Envelope
from contracts.events import (
    RestrictionApplied,
    RestrictionLifted,
    SkillRemoved,
    SkillSet,
    TaskAccessRevoked,
)
from contracts.rpc import tasks as rpc
from servicekit.errors import Forbidden
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from tasks_service import domain
from tasks_service.context import TasksContext
from tasks_service.store import TasksStore

router = Router()

@router.on_startup
async def seed_trust_limits(ctx: TasksContext) -> None:
    """Give a fresh database the default limits (levels already set are left alone)."""
    async with ctx.uow() as uow:
        await uow.store.seed_trust_limits(domain.DEFAULT_TRUST_LIMITS, ctx.clock())


async def _all_limits(store: TasksStore) -> rpc.TrustLimits:
    """Every level's limits, lowest level first (a level never set has its defaults)."""
    stored = {lim.level: lim for lim in await store.trust_limits()}
    return rpc.TrustLimits(levels=[stored.get(d.level, d) for d in domain.DEFAULT_TRUST_LIMITS])


@router.rpc(rpc.GET_TRUST_LIMITS)
async def get_trust_limits(req: rpc.TrustLimitsGet, ctx: TasksContext) -> rpc.TrustLimits:
    """The limits of every trust level: active assignments, pause between takes, timeout."""
    async with ctx.read() as r:
        return await _all_limits(r.store)


@router.rpc(rpc.SET_TRUST_LIMITS)
async def set_trust_limits(req: rpc.TrustLimitsSet, ctx: TasksContext) -> rpc.TrustLimits:
    """Set one trust level's limits (max active, pause between takes, timeout)."""
    async with ctx.uow() as uow:
        await uow.store.set_trust_limits(req.limits, ctx.clock())
        return await _all_limits(uow.store)


async def _profile(uow: UnitOfWork[TasksStore], ctx: TasksContext,
                   worker_id: str) -> rpc.WorkerProfile:
    profile = await uow.store.worker_profile(worker_id, ctx.clock())
    assert profile is not None  # created in this transaction if it was not there
    return profile


@router.rpc(rpc.GET_WORKER_PROFILE)
async def get_worker_profile(req: rpc.WorkerProfileGet, ctx: TasksContext) -> rpc.WorkerProfile:
    """A worker's trust level, skills and restrictions in force (created lazily); a worker
    reads only their own."""
    if req.actor.role == "worker" and req.actor.user_id != req.worker_id:
        raise Forbidden("forbidden", "only admins may read other workers' profiles")
    async with ctx.uow() as uow:
        await uow.store.ensure_worker(req.worker_id, ctx.clock())
        return await _profile(uow, ctx, req.worker_id)


@router.rpc(rpc.SET_TRUST_LEVEL)
async def set_trust_level(req: rpc.SetTrustLevel, ctx: TasksContext) -> rpc.WorkerProfile:
    """Set a worker's trust level (the gateway audits the change)."""
    async with ctx.uow() as uow:
        await uow.store.ensure_worker(req.worker_id, ctx.clock())
        await uow.store.set_trust_level(req.worker_id, req.trust_level)
        return await _profile(uow, ctx, req.worker_id)


# ------------------------------------------------------------------ from the rules


@router.consume("rules.restriction.applied", name="restriction-applied")
async def on_restriction_applied(event: RestrictionApplied, env: Envelope,
                                 uow: UnitOfWork[TasksStore], ctx: TasksContext) -> None:
    """Keep the restriction; takes check it (expired ones are ignored by their ``until``)."""
    await uow.store.add_restriction({
        "restriction_id": event.restriction_id, "worker_id": event.worker_id, "scope": event.scope,
        "pool_id": event.pool_id, "project_id": event.project_id, "until": event.until,
        "created_at": ctx.clock()})


@router.consume("rules.restriction.lifted", name="restriction-lifted")
async def on_restriction_lifted(event: RestrictionLifted, env: Envelope,
                                uow: UnitOfWork[TasksStore], ctx: TasksContext) -> None:
    """A restriction ends: takes no longer see it."""
    await uow.store.lift_restriction(event.restriction_id, event.lifted_at)


async def set_skill(uow: UnitOfWork[TasksStore], worker_id: str, skill: str,
                    value: int | None, now: datetime, cause: Envelope | None = None) -> None:
    """Set (or, ``value`` None, remove) one skill of the worker (pools' skill filters read
    it).

    Where the change shuts the worker out of a pool they have worked in (its skill filters
    passed before and fail now), ``task.access_revoked`` tells the rules service:
    re-execution rules (access revoked by a skill change) react to it. Used for the rules'
    skills, a manager's hand and exam scores (:mod:`tasks_service.results`).
    """
    before = await uow.store.lock_worker_skills(worker_id, now)
    skills = {k: v for k, v in before.items() if k != skill}
    if value is not None:
        skills[skill] = value
    await uow.store.set_skills(worker_id, skills)
    if before.get(skill) == value:
        return
    for p in await uow.store.pools_worked_in(worker_id):
        if not any(f.skill == skill for f in p.skill_filters):
            continue
        if domain.skills_pass(p.skill_filters, before) and \
                not domain.skills_pass(p.skill_filters, skills):
            uow.record(TaskAccessRevoked(worker_id=worker_id, pool_id=p.pool_id,
                                         project_id=p.project_id, skill=skill,
                                         revoked_at=now), cause=cause)


@router.consume("rules.skill.set", name="skill-set")
async def on_skill_set(event: SkillSet, env: Envelope, uow: UnitOfWork[TasksStore],
                       ctx: TasksContext) -> None:
    """Set one skill of the worker (see :func:`set_skill`)."""
    await set_skill(uow, event.worker_id, event.skill, event.value, ctx.clock(), env)


@router.consume("rules.skill.removed", name="skill-removed")
async def on_skill_removed(event: SkillRemoved, env: Envelope, uow: UnitOfWork[TasksStore],
                           ctx: TasksContext) -> None:
    """Remove one skill of the worker (a manager's hand)."""
    await set_skill(uow, event.worker_id, event.skill, None, ctx.clock(), env)

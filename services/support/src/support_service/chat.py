"""Task chat (per assignment: its worker and the reviewing staff) and pool chat (everyone),
with moderation (hide a message, mute a user for a time) and a per-user rate limit.

Every post is a ``support.chat.posted`` event through the outbox; the gateway turns it
into a live hint for the thread's readers, who then load the thread through the API.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from contracts.envelope import Envelope
from contracts.events import ChatDeleted, ChatMuted, ChatPosted, PoolOpened
from contracts.rpc import support as rpc
from servicekit.errors import Invalid, NotFound, ServiceError
from servicekit.router import Router
from servicekit.uow import UnitOfWork
from support_service import chat_rules
from support_service.context import SupportContext
from support_service.store import SupportStore

router = Router()
# until this version, support kept a copy of every take (task.taken) for the task chat
router.retire("TASK", "chat-assignments")


@router.consume("task.pool_opened", name="chat-pools")
async def on_pool_opened(event: PoolOpened, env: Envelope, uow: UnitOfWork[SupportStore],
                         ctx: SupportContext) -> None:
    """A pool that opened has a general chat."""
    await uow.store.remember_pool(event.pool_id, event.opened_at)


async def _thread_worker(store: SupportStore, req: rpc.ChatList | rpc.ChatPost) -> str | None:
    """The assignment's worker for a task chat (None for a pool chat), if the caller may use
    the thread; a thread they may not use is "not found". The assignment's owner comes with
    the request (the gateway asked tasks), so a chat exists for every assignment at once."""
    if req.kind == "pool":
        if not await store.pool_known(req.ref):
            raise NotFound("chat_not_found", f"pool {req.ref} has no chat (it never opened)")
        return None
    owner, actor = req.owner, req.actor
    if owner is None or not chat_rules.may_use_assignment_thread(
            worker_id=owner.worker_id, user_id=actor.user_id, role=actor.role):
        raise NotFound("chat_not_found", f"no task chat for assignment {req.ref}")
    return owner.worker_id


@router.rpc(rpc.LIST_CHAT)
async def list_chat(req: rpc.ChatList, ctx: SupportContext) -> rpc.ChatMessages:
    """The latest messages of a thread, oldest first, and whether the caller is muted."""
    async with ctx.read() as r:
        worker_id = await _thread_worker(r.store, req)
        items = await r.store.chat_messages(req.kind, req.ref, req.limit)
        muted = await r.store.muted_until(req.actor.user_id, ctx.clock())
    return rpc.ChatMessages(kind=req.kind, ref=req.ref, worker_id=worker_id, items=items,
                            muted_until=muted)


@router.rpc(rpc.POST_CHAT)
async def post_chat(req: rpc.ChatPost, ctx: SupportContext) -> rpc.ChatMessage:
    """Post a message; refused with ``chat_muted`` (403) while muted and with
    ``chat_rate_limited`` (429, ``retry_after_s``) when sending too fast."""
    now, s = ctx.clock(), ctx.settings
    async with ctx.uow() as uow:
        worker_id = await _thread_worker(uow.store, req)
        await uow.store.lock_author(req.actor.user_id)
        muted = await uow.store.muted_until(req.actor.user_id, now)
        if muted is not None:
            raise ServiceError("chat_muted", "a moderator muted you in the chat until "
                               f"{muted.isoformat()}", status=403,
                               details={"muted_until": muted.isoformat()})
        posts = await uow.store.posts_since(req.actor.user_id,
                                            now - timedelta(seconds=s.chat_rate_window_s))
        wait = chat_rules.retry_after_s(posts, now=now, max_posts=s.chat_rate_max,
                                        window_s=s.chat_rate_window_s)
        if wait is not None:
            raise ServiceError("chat_rate_limited",
                               f"at most {s.chat_rate_max} messages in {s.chat_rate_window_s:g} "
                               f"s: try again in {wait} s", status=429,
                               details={"retry_after_s": wait})
        message = rpc.ChatMessage(message_id=str(uuid.uuid4()), kind=req.kind, ref=req.ref,
                                  author_id=req.actor.user_id, author_role=req.actor.role,
                                  text=req.text, created_at=now)
        if req.owner is not None:  # the thread's assignment, as the list of threads shows it
            await uow.store.remember_assignments([{
                "assignment_id": req.ref, "worker_id": req.owner.worker_id,
                "pool_id": req.owner.pool_id, "task_id": req.owner.task_id,
                "taken_at": req.owner.taken_at}])
        await uow.store.add_chat_message(message)
        uow.record(ChatPosted(message_id=message.message_id, kind=req.kind, ref=req.ref,
                              worker_id=worker_id, author_id=req.actor.user_id, at=now))
    return message


@router.rpc(rpc.CHAT_THREADS)
async def chat_threads(req: rpc.ChatThreadsRequest, ctx: SupportContext) -> rpc.ChatThreads:
    """The caller's task chats with messages (staff: every one) and the pools' chats."""
    own = req.actor.user_id if req.actor.role == "worker" else None
    async with ctx.read() as r:
        return rpc.ChatThreads(threads=await r.store.chat_threads(worker_id=own,
                                                                  limit=req.limit),
                               pools=await r.store.pools())


@router.rpc(rpc.DELETE_CHAT)
async def delete_chat(req: rpc.ChatDelete, ctx: SupportContext) -> rpc.ChatMessage:
    """Moderation: hide a message from everyone (kept for the record)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        message = await uow.store.delete_chat_message(req.message_id, by=req.actor.user_id,
                                                      now=now)
        if message is None:
            found = await uow.store.chat_message(req.message_id)
            if found is None:
                raise NotFound("chat_message_not_found", f"no chat message {req.message_id}")
            return found                         # hidden already
        worker_id = (await uow.store.assignment_worker(message.ref)
                     if message.kind == "assignment" else None)
        uow.record(ChatDeleted(message_id=message.message_id, kind=message.kind,
                               ref=message.ref, worker_id=worker_id,
                               by_user_id=req.actor.user_id, at=now))
    return message


@router.rpc(rpc.MUTE_CHAT)
async def mute_chat(req: rpc.ChatMute, ctx: SupportContext) -> rpc.ChatMuteState:
    """Moderation: the user may read but not write in any chat for ``minutes``."""
    if req.user_id == req.actor.user_id:
        raise Invalid("mute_self", "a moderator cannot mute themselves")
    now = ctx.clock()
    until = now + timedelta(minutes=req.minutes)
    async with ctx.uow() as uow:
        await uow.store.set_mute(user_id=req.user_id, until=until, by_user_id=req.actor.user_id,
                                 reason=req.reason, now=now)
        uow.record(ChatMuted(user_id=req.user_id, by_user_id=req.actor.user_id, until=until,
                             reason=req.reason))
    return rpc.ChatMuteState(user_id=req.user_id, muted_until=until)


@router.rpc(rpc.UNMUTE_CHAT)
async def unmute_chat(req: rpc.ChatUnmute, ctx: SupportContext) -> rpc.ChatMuteState:
    """Moderation: lift a mute now."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        if await uow.store.muted_until(req.user_id, now) is not None:
            await uow.store.set_mute(user_id=req.user_id, until=now,
                                     by_user_id=req.actor.user_id, reason="lifted", now=now)
            uow.record(ChatMuted(user_id=req.user_id, by_user_id=req.actor.user_id, until=None,
                                 reason="lifted"))
    return rpc.ChatMuteState(user_id=req.user_id, muted_until=None)

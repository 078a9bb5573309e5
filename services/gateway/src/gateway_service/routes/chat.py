# mypy: disable-error-code="valid-type"
"""Chat: a thread per assignment (its worker and the reviewing staff) and a general chat per
pool; moderation (hide a message, mute a user) for managers and admins. New messages reach
open pages as ``chat`` hints on /api/live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from contracts.rpc import Actor
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import AnyActor, Rpc, StaffActor
from gateway_service.routes.bodies import body_of, request_of
from servicekit.errors import NotFound, RpcCallError
from servicekit.rpc import RpcClient

router = APIRouter(tags=["chat"])

ChatPostBody = body_of(support_rpc.ChatPost, "ChatPostBody", without={"kind", "ref", "owner"})
ChatMuteBody = body_of(support_rpc.ChatMute, "ChatMuteBody")
Ref = Annotated[str, Path(pattern=support_rpc.CHAT_ID,
                          description="the assignment id (task chat) or the pool id")]
Kind = Annotated[support_rpc.ThreadKind, Path(description="assignment or pool")]
UserId = Annotated[str, Path(min_length=1, max_length=64)]
MessageId = Annotated[str, Path(min_length=1, max_length=36)]


async def _owner(rpc: RpcClient, actor: Actor, kind: str,
                 ref: str) -> tasks_rpc.AssignmentOwner | None:
    """A task chat's assignment as tasks knows it (support keeps no copy of every take); an
    assignment the caller may not see is a chat that does not exist."""
    if kind != "assignment":
        return None
    try:
        return await rpc.call(tasks_rpc.ASSIGNMENT_OWNER,
                              tasks_rpc.AssignmentRef(actor=actor, assignment_id=ref))
    except RpcCallError as exc:
        if exc.error.status != 404:
            raise
        raise NotFound("chat_not_found", f"no task chat for assignment {ref}") from exc


@router.get("/chat", response_model=support_rpc.ChatThreads,
            summary="My task chats (staff: all with messages) and the pools' general chats")
async def chat_threads(actor: AnyActor, rpc: Rpc,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50) -> support_rpc.ChatThreads:
    return await rpc.call(support_rpc.CHAT_THREADS,
                          support_rpc.ChatThreadsRequest(actor=actor, limit=limit))


@router.get("/chat/{kind}/{ref}", response_model=support_rpc.ChatMessages,
            summary="A chat thread's latest messages, oldest first")
async def list_chat(actor: AnyActor, rpc: Rpc, kind: Kind, ref: Ref,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> support_rpc.ChatMessages:
    return await rpc.call(support_rpc.LIST_CHAT, support_rpc.ChatList(
        actor=actor, kind=kind, ref=ref, limit=limit, owner=await _owner(rpc, actor, kind, ref)))


@router.post("/chat/{kind}/{ref}/messages", response_model=support_rpc.ChatMessage,
             status_code=status.HTTP_201_CREATED,
             summary="Post to a chat (403 chat_muted while muted, 429 chat_rate_limited with "
                     "retry_after_s and Retry-After when too fast)",
             responses={403: {"description": "chat_muted"},
                        429: {"description": "chat_rate_limited"}})
async def post_chat(actor: AnyActor, rpc: Rpc, kind: Kind, ref: Ref,
                    body: ChatPostBody) -> support_rpc.ChatMessage:
    return await rpc.call(support_rpc.POST_CHAT, request_of(
        body, support_rpc.ChatPost, actor=actor, kind=kind, ref=ref,
        owner=await _owner(rpc, actor, kind, ref)))


@router.delete("/chat/messages/{message_id}", response_model=support_rpc.ChatMessage,
               tags=["chat: moderation"], summary="Hide a chat message from everyone")
async def delete_chat(actor: StaffActor, rpc: Rpc,
                      message_id: MessageId) -> support_rpc.ChatMessage:
    return await rpc.call(support_rpc.DELETE_CHAT,
                          support_rpc.ChatDelete(actor=actor, message_id=message_id))


@router.post("/chat/mutes", response_model=support_rpc.ChatMuteState,
             tags=["chat: moderation"], summary="Mute a user in every chat for some minutes")
async def mute(actor: StaffActor, rpc: Rpc, body: ChatMuteBody) -> support_rpc.ChatMuteState:
    return await rpc.call(support_rpc.MUTE_CHAT,
                          request_of(body, support_rpc.ChatMute, actor=actor))


@router.delete("/chat/mutes/{user_id}", response_model=support_rpc.ChatMuteState,
               tags=["chat: moderation"], summary="Lift a user's mute")
async def unmute(actor: StaffActor, rpc: Rpc, user_id: UserId) -> support_rpc.ChatMuteState:
    return await rpc.call(support_rpc.UNMUTE_CHAT,
                          support_rpc.ChatUnmute(actor=actor, user_id=user_id))

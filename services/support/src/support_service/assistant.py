"""The assistant for frequent questions."""

from __future__ import annotations

from contracts.rpc import support as rpc
from servicekit.router import Router
from support_service.context import SupportContext
from support_service.faq import best_answer

router = Router()


@router.rpc(rpc.ASK)
async def ask(req: rpc.AskAssistant, ctx: SupportContext) -> rpc.AssistantAnswer:
    """The best matching article of the knowledge base, or a hand-over suggestion."""
    m = best_answer(req.question)
    if m is None:
        return rpc.AssistantAnswer(
            answered=False,
            suggestion="No answer found in the knowledge base: open a support ticket.")
    return rpc.AssistantAnswer(answered=True, question=m.question, answer=m.answer,
                               score=m.score)

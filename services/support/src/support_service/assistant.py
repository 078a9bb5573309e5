"""The assistant for frequent questions (Russian and English, offline).

It answers with the best article of the knowledge base (``support_service.kb``) and always
cites it (id and title). Below ``assistant_threshold`` it does not guess: it hands the
question to a person by opening a support ticket (the same path as ``create_ticket``).
The article about refused takes is marked ``diagnose``: the gateway then adds this
worker's diagnosis from the tasks service (only the gateway calls services).

An optional generator behind an OpenAI-compatible ``/chat/completions`` endpoint may
rephrase the retrieved article when ``generator_url`` is set (off by default); its text
is given beside the article, never instead of the citation, and a failing generator only
leaves it out.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from contracts.rpc import support as rpc
from servicekit.errors import NotFound
from servicekit.router import Router
from support_service.context import SupportContext
from support_service.kb import Article, detect_lang, knowledge_base
from support_service.settings import SupportSettings
from support_service.tickets import open_ticket

router = Router()
log = logging.getLogger(__name__)

HAND_OVER = {
    "ru": "В базе знаний нет уверенного ответа: вопрос передан сотруднику поддержки.",
    "en": "No confident answer in the knowledge base: the question went to a support person.",
}
NO_HAND_OVER = {
    "ru": "В базе знаний нет уверенного ответа: откройте обращение в поддержку.",
    "en": "No confident answer in the knowledge base: open a support ticket.",
}


def _prompt(question: str, article: Article) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": (
            "You answer a worker of a microtask platform. Use only the article below; "
            "do not add facts. Answer in the language of the question, briefly.\n\n"
            f"# {article.title}\n\n{article.body}")},
        {"role": "user", "content": question},
    ]


async def generate(settings: SupportSettings, question: str, article: Article, *,
                   transport: httpx.AsyncBaseTransport | None = None) -> str | None:
    """The article rephrased for the question by the configured generator, or None (not
    configured, or it failed: the article itself is the answer then)."""
    if not settings.generator_url:
        return None
    headers = {}
    key = settings.generator_api_key.get_secret_value()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body: dict[str, Any] = {"model": settings.generator_model or "default",
                            "messages": _prompt(question, article), "temperature": 0.2}
    try:
        async with httpx.AsyncClient(timeout=settings.generator_timeout_s,
                                     transport=transport) as client:
            resp = await client.post(settings.generator_url.rstrip("/") + "/chat/completions",
                                     json=body, headers=headers)
            resp.raise_for_status()
            text = resp.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.warning("generator failed, answering with the article: %s", exc)
        return None
    return text.strip() if isinstance(text, str) and text.strip() else None


async def _hand_over(req: rpc.AskAssistant, ctx: SupportContext, lang: rpc.Lang) -> str:
    async with ctx.uow() as uow:
        ticket = await open_ticket(uow, ctx, user_id=req.actor.user_id,
                                   role=req.actor.role, kind="assistant",
                                   subject=req.question.strip()[:200] or "?",
                                   text=req.question)
    return ticket.ticket_id


@router.rpc(rpc.ASK)
async def ask(req: rpc.AskAssistant, ctx: SupportContext) -> rpc.AssistantAnswer:
    """The best article for the question, cited; or the question handed to a person."""
    lang: rpc.Lang = req.lang or detect_lang(req.question)
    threshold = ctx.settings.assistant_threshold
    hit = knowledge_base().search(req.question, lang)
    if hit is None or hit.confidence < threshold:
        ticket_id = await _hand_over(req, ctx, lang) if req.hand_over else None
        return rpc.AssistantAnswer(
            answered=False, lang=lang, threshold=threshold, ticket_id=ticket_id,
            score=hit.score if hit else 0.0, confidence=hit.confidence if hit else 0.0,
            suggestion=(HAND_OVER if ticket_id else NO_HAND_OVER)[lang])
    a = hit.article
    return rpc.AssistantAnswer(
        answered=True, question=a.title, answer=a.body, score=hit.score,
        confidence=hit.confidence, threshold=threshold, lang=lang, diagnose=a.diagnose,
        citation=rpc.Citation(article_id=a.id, title=a.title, lang=lang),
        generated=await generate(ctx.settings, req.question, a))


@router.rpc(rpc.ASSISTANT_ARTICLES)
async def articles(req: rpc.ArticleList, ctx: SupportContext) -> rpc.Articles:
    """The knowledge base's table of contents in one language."""
    return rpc.Articles(items=[rpc.ArticleSummary(article_id=a.id, title=a.title, lang=a.lang)
                               for a in knowledge_base().articles if a.lang == req.lang])


@router.rpc(rpc.ASSISTANT_ARTICLE)
async def article(req: rpc.ArticleGet, ctx: SupportContext) -> rpc.Article:
    """One article (what an answer's citation links to)."""
    a = knowledge_base().article(req.article_id, req.lang)
    if a is None:
        raise NotFound("article_not_found", f"no article {req.article_id!r} in {req.lang!r}")
    return rpc.Article(article_id=a.id, title=a.title, lang=a.lang, markdown=a.body)

"""The assistant: the question set in the repo, citations, hand-over as a ticket, the
optional generator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from contracts.rpc import Actor, Page
from contracts.rpc import support as rpc
from support_service import assistant
from support_service.kb import KB_DIR, LANGS, knowledge_base, load_articles
from support_service.settings import SupportSettings

QUESTIONS = yaml.safe_load((Path(__file__).with_name("assistant_questions.yaml"))
                           .read_text(encoding="utf-8"))
WORKER = Actor(user_id="w-assistant", role="worker")
TOPICS = {"take-tasks", "cant-take", "limits", "timeouts", "reviews", "credits-balance",
          "payouts", "trust-levels", "quality-rules", "mfa", "emergency"}


def test_the_knowledge_base_covers_every_topic_in_both_languages() -> None:
    articles = load_articles(KB_DIR)
    for lang in LANGS:
        ids = {a.id for a in articles if a.lang == lang}
        assert ids >= TOPICS, TOPICS - ids
    assert {a.id for a in articles if a.lang == "ru"} == {a.id for a in articles
                                                          if a.lang == "en"}
    assert [a.id for a in articles if a.diagnose] == ["cant-take", "cant-take"]


def test_the_question_set_is_big_enough_and_half_russian() -> None:
    assert len(QUESTIONS) >= 40
    ru = sum(q["lang"] == "ru" for q in QUESTIONS)
    assert ru * 2 == len(QUESTIONS)
    assert {q["article"] for q in QUESTIONS} - {None} <= {a.id for a in knowledge_base().articles}


def test_limits_article_states_the_trust_levels_defaults() -> None:
    from tasks_service.domain import DEFAULT_TRUST_LIMITS

    for lang in LANGS:
        body = knowledge_base().article("limits", lang).body  # type: ignore[union-attr]
        for lim in DEFAULT_TRUST_LIMITS:
            row = next(line for line in body.splitlines() if line.startswith(f"| {lim.level} |"))
            assert f"| {lim.max_active} |" in row, row


async def test_the_right_article_comes_first_for_90_percent_and_the_rest_go_to_a_person(
        pg_ctx) -> None:
    right = wrong = handed = 0
    misses: list[str] = []
    for q in QUESTIONS:
        ans = await assistant.ask(rpc.AskAssistant(actor=WORKER, question=q["q"],
                                                   lang=q["lang"], hand_over=True), pg_ctx)
        if ans.answered:
            assert ans.citation is not None and ans.citation.lang == q["lang"]
            assert ans.question == ans.citation.title
            if ans.citation.article_id == q["article"]:
                right += 1
                continue
            wrong += 1
            misses.append(f"{q['q']!r}: {ans.citation.article_id} != {q['article']}")
        else:
            assert ans.ticket_id, q
            handed += 1
            if q["article"] is not None:
                misses.append(f"{q['q']!r}: handed over ({ans.confidence})")
    in_scope = sum(q["article"] is not None for q in QUESTIONS)
    out_of_scope = len(QUESTIONS) - in_scope
    assert wrong == 0, misses
    assert right >= 0.9 * in_scope, misses
    assert handed == len(QUESTIONS) - right and handed >= out_of_scope
    async with pg_ctx.read() as r:
        tickets, total = await r.store.list_tickets(
            rpc.TicketList(actor=WORKER, page=Page(limit=500)), own=WORKER.user_id,
            now=datetime.now(UTC))
    assert total == handed and {t.kind for t in tickets} == {"assistant"}


async def test_an_unsure_answer_opens_a_ticket_only_when_asked_to(pg_ctx) -> None:
    ans = await assistant.ask(rpc.AskAssistant(actor=WORKER, question="zebra marmalade"), pg_ctx)
    assert not ans.answered and ans.ticket_id is None and ans.suggestion
    ans = await assistant.ask(rpc.AskAssistant(actor=WORKER, question="Как вывести деньги?"),
                              pg_ctx)
    assert ans.answered and ans.lang == "ru" and ans.citation is not None
    assert ans.citation.article_id == "payouts" and ans.citation.title.startswith("Выплаты")
    assert ans.generated is None  # no generator configured


async def test_the_cant_take_article_asks_for_the_diagnosis(pg_ctx) -> None:
    ans = await assistant.ask(rpc.AskAssistant(actor=WORKER, question="why can't I take tasks?"),
                              pg_ctx)
    assert ans.answered and ans.diagnose and ans.citation.article_id == "cant-take"  # type: ignore[union-attr]


async def test_the_generator_rephrases_the_cited_article_and_is_skipped_when_it_fails() -> None:
    seen: list[dict] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer k"
        return httpx.Response(200, json={"choices": [{"message": {"content": " Rephrased. "}}]})

    settings = SupportSettings(database_url="postgresql://unused/x", generator_url="http://llm/v1",
                               generator_model="m", generator_api_key="k")
    article = knowledge_base().article("payouts", "en")
    assert article is not None
    text = await assistant.generate(settings, "how do I cash out", article,
                                    transport=httpx.MockTransport(reply))
    assert text == "Rephrased."
    assert seen[0]["model"] == "m" and article.title in seen[0]["messages"][0]["content"]
    failing = httpx.MockTransport(lambda r: httpx.Response(500))
    assert await assistant.generate(settings, "q", article, transport=failing) is None
    off = SupportSettings(database_url="postgresql://unused/x")
    assert await assistant.generate(off, "q", article) is None


@pytest.mark.parametrize("typo,article", [("how to request a payuot", "payouts"),
                                          ("как запросить выплатту", "payouts")])
def test_typos_are_corrected_to_the_knowledge_bases_words(typo: str, article: str) -> None:
    hit = knowledge_base().search(typo)
    assert hit is not None and hit.article.id == article

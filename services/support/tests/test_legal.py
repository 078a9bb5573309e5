"""Legal documents: every template in both languages as HTML and as a PDF that parses and
carries its headings; the worker's acceptance of the current terms."""

from __future__ import annotations

import base64
import io
import re

import pypdf
import pytest

from contracts.rpc import Actor
from contracts.rpc import support as rpc
from servicekit.errors import Conflict, NotFound
from support_service import legal

WORKER = Actor(user_id="w-legal", role="worker")
DOCS = ("terms", "privacy", "legal-minimum")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def test_every_document_exists_in_both_languages(pg_ctx) -> None:
    for lang in ("ru", "en"):
        listed = await legal.list_legal(rpc.LegalList(actor=WORKER, lang=lang), pg_ctx)
        assert [d.doc_id for d in listed.items] == list(DOCS)
        assert all(d.version and d.lang == lang for d in listed.items)


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("doc_id", DOCS)
async def test_each_pdf_parses_and_has_the_markdowns_headings(pg_ctx, doc_id: str,
                                                              lang: str) -> None:
    req = rpc.LegalGet(actor=WORKER, doc_id=doc_id, lang=lang)
    doc = await legal.get_legal(req, pg_ctx)
    heads = legal.headings(doc.markdown)
    assert len(heads) >= 2
    assert all(f">{h}</h" in doc.html for h in heads)
    assert bool(_CYRILLIC.search(" ".join(heads))) == (lang == "ru")
    pdf = await legal.get_legal_pdf(req, pg_ctx)
    assert pdf.filename == f"{doc_id}-{lang}-{doc.version}.pdf"
    reader = pypdf.PdfReader(io.BytesIO(base64.b64decode(pdf.pdf_base64)))
    text = squash(" ".join(page.extract_text() for page in reader.pages))
    for h in heads:
        assert squash(h) in text, (h, text[:300])


async def test_unknown_documents_are_404(pg_ctx) -> None:
    with pytest.raises(NotFound):
        await legal.get_legal(rpc.LegalGet(actor=WORKER, doc_id="nope"), pg_ctx)


def test_raw_html_in_a_template_is_escaped() -> None:
    assert "<script>" not in legal.to_html("hi <script>alert(1)</script>")


async def test_a_worker_accepts_the_current_terms_once(pg_ctx, clock) -> None:
    before = await legal.terms_status(rpc.TermsStatusGet(actor=WORKER), pg_ctx)
    assert before.needs_acceptance and before.accepted_version is None
    with pytest.raises(Conflict):
        await legal.accept_terms(rpc.TermsAccept(actor=WORKER, version="1999-01-01"), pg_ctx)
    first = await legal.accept_terms(
        rpc.TermsAccept(actor=WORKER, version=before.current_version), pg_ctx)
    assert not first.needs_acceptance and first.accepted_version == before.current_version
    clock.advance(60)
    again = await legal.accept_terms(
        rpc.TermsAccept(actor=WORKER, version=before.current_version, lang="en"), pg_ctx)
    assert again.accepted_at == first.accepted_at  # recorded once
    other = await legal.terms_status(rpc.TermsStatusGet(
        actor=Actor(user_id="someone-else", role="worker")), pg_ctx)
    assert other.needs_acceptance

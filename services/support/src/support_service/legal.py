"""Legal documents: Markdown templates in ``legal/{ru,en}``, served as HTML and PDF, and
the worker's acceptance of the current terms (recorded once per version).

Each template has a YAML front matter with ``id``, ``title``, ``version`` and
``effective``; publishing a new version is editing the file and raising ``version``, after
which every worker is asked to accept again. HTML comes from ``markdown-it-py`` (raw HTML in
a template is escaped, not passed through); the PDF from ``fpdf2`` in DejaVu Sans (bundled
from Debian's fonts-dejavu-core, its licence beside it), which renders Cyrillic.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from contracts.rpc import support as rpc
from servicekit.errors import Conflict, NotFound
from servicekit.router import Router
from support_service.context import SupportContext

router = Router()

LEGAL_DIR = Path(__file__).with_name("legal")
FONT_DIR = LEGAL_DIR / "fonts"
TERMS_ID = "terms"
_ORDER = ("terms", "privacy", "legal-minimum")


@dataclass(frozen=True)
class LegalTemplate:
    doc_id: str
    lang: rpc.Lang
    title: str
    version: str
    effective: str
    markdown: str

    def summary(self) -> rpc.LegalSummary:
        return rpc.LegalSummary(doc_id=self.doc_id, lang=self.lang, title=self.title,
                                version=self.version, effective=self.effective)


def _load(path: Path, lang: rpc.Lang) -> LegalTemplate:
    _, head, body = path.read_text(encoding="utf-8").split("---", 2)
    meta = yaml.safe_load(head)
    return LegalTemplate(doc_id=str(meta["id"]), lang=lang, title=str(meta["title"]),
                         version=str(meta["version"]), effective=str(meta["effective"]),
                         markdown=body.strip() + "\n")


@cache
def templates() -> dict[tuple[str, str], LegalTemplate]:
    found: dict[tuple[str, str], LegalTemplate] = {}
    for lang in ("ru", "en"):
        for path in sorted((LEGAL_DIR / lang).glob("*.md")):
            t = _load(path, lang)
            found[(t.doc_id, lang)] = t
    return found


def template(doc_id: str, lang: str) -> LegalTemplate:
    t = templates().get((doc_id, lang))
    if t is None:
        raise NotFound("legal_doc_not_found", f"no legal document {doc_id!r} in {lang!r}")
    return t


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def to_html(markdown: str) -> str:
    return _MD.render(markdown)


def headings(markdown: str) -> list[str]:
    """The text of every heading of a document (the PDF test looks for each)."""
    tokens = _MD.parse(markdown)
    return [tokens[i + 1].content for i, tok in enumerate(tokens) if tok.type == "heading_open"]


def to_pdf(t: LegalTemplate) -> bytes:
    """The document as PDF: its HTML laid out by fpdf2 in DejaVu Sans."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(t.title)
    pdf.set_lang(t.lang)
    pdf.set_creator("Microtask Engine")
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "I", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "BI", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font("DejaVu", size=10)
    label = "Версия" if t.lang == "ru" else "Version"
    pdf.write_html(f"<p><i>{label} {t.version}</i></p>" + to_html(t.markdown),
                   font_family="DejaVu", ul_bullet_char="\u2022")
    return bytes(pdf.output())


@router.rpc(rpc.LIST_LEGAL)
async def list_legal(req: rpc.LegalList, ctx: SupportContext) -> rpc.LegalDocs:
    """The current version of every legal document in the language asked for."""
    docs = [t for (_, lang), t in templates().items() if lang == req.lang]
    docs.sort(key=lambda t: _ORDER.index(t.doc_id) if t.doc_id in _ORDER else len(_ORDER))
    return rpc.LegalDocs(items=[t.summary() for t in docs])


@router.rpc(rpc.GET_LEGAL)
async def get_legal(req: rpc.LegalGet, ctx: SupportContext) -> rpc.LegalDoc:
    """One document as its Markdown and as HTML."""
    t = template(req.doc_id, req.lang)
    return rpc.LegalDoc(**t.summary().model_dump(), markdown=t.markdown, html=to_html(t.markdown))


@cache
def _pdf_of(doc_id: str, lang: str, version: str) -> str:
    return base64.b64encode(to_pdf(template(doc_id, lang))).decode()


@router.rpc(rpc.GET_LEGAL_PDF)
async def get_legal_pdf(req: rpc.LegalGet, ctx: SupportContext) -> rpc.LegalPdf:
    """One document as PDF (rendered once per version)."""
    t = template(req.doc_id, req.lang)
    return rpc.LegalPdf(filename=f"{t.doc_id}-{t.lang}-{t.version}.pdf", version=t.version,
                        pdf_base64=_pdf_of(t.doc_id, t.lang, t.version))


async def _status(ctx: SupportContext, user_id: str, lang: str) -> rpc.TermsStatus:
    current = template(TERMS_ID, lang).version
    async with ctx.read() as r:
        last = await r.store.latest_acceptance(user_id, TERMS_ID)
        at_current = await r.store.acceptance(user_id, TERMS_ID, current)
    return rpc.TermsStatus(doc_id=TERMS_ID, current_version=current,
                           accepted_version=last[0] if last else None,
                           accepted_at=at_current or (last[1] if last else None),
                           needs_acceptance=at_current is None)


@router.rpc(rpc.TERMS_STATUS)
async def terms_status(req: rpc.TermsStatusGet, ctx: SupportContext) -> rpc.TermsStatus:
    """Whether the calling worker has accepted the current version of the terms."""
    return await _status(ctx, req.actor.user_id, req.lang)


@router.rpc(rpc.ACCEPT_TERMS)
async def accept_terms(req: rpc.TermsAccept, ctx: SupportContext) -> rpc.TermsStatus:
    """Record the worker's acceptance of the current terms; accepting again changes
    nothing (the first acceptance's time stays)."""
    current = template(TERMS_ID, req.lang).version
    if req.version != current:
        raise Conflict("terms_version_outdated",
                       f"the current terms are version {current}: read and accept that one",
                       details={"current_version": current})
    async with ctx.uow() as uow:
        await uow.store.accept_legal(user_id=req.actor.user_id, doc_id=TERMS_ID,
                                     version=current, lang=req.lang, at=ctx.clock())
    return await _status(ctx, req.actor.user_id, req.lang)

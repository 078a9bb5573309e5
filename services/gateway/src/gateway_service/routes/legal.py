# mypy: disable-error-code="valid-type"
"""Legal documents behind login (HTML and PDF) and the worker's acceptance of the terms."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from contracts.rpc import support as support_rpc
from gateway_service.deps import AnyActor, Rpc, WorkerActor
from gateway_service.routes.bodies import body_of, request_of

router = APIRouter(tags=["legal"])

Lang = Annotated[support_rpc.Lang, Query()]
AcceptBody = body_of(support_rpc.TermsAccept, "TermsAcceptBody")


@router.get("/legal", response_model=support_rpc.LegalDocs,
            summary="The current legal documents in one language")
async def list_docs(actor: AnyActor, rpc: Rpc, lang: Lang = "ru") -> support_rpc.LegalDocs:
    return await rpc.call(support_rpc.LIST_LEGAL, support_rpc.LegalList(actor=actor, lang=lang))


@router.get("/legal/{doc_id}", response_model=support_rpc.LegalDoc,
            summary="One legal document as HTML (and its Markdown)")
async def get_doc(actor: AnyActor, rpc: Rpc, doc_id: str,
                  lang: Lang = "ru") -> support_rpc.LegalDoc:
    return await rpc.call(support_rpc.GET_LEGAL,
                          support_rpc.LegalGet(actor=actor, doc_id=doc_id, lang=lang))


@router.get("/legal/{doc_id}/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}},
            summary="One legal document as PDF")
async def get_pdf(actor: AnyActor, rpc: Rpc, doc_id: str, lang: Lang = "ru") -> Response:
    pdf = await rpc.call(support_rpc.GET_LEGAL_PDF,
                         support_rpc.LegalGet(actor=actor, doc_id=doc_id, lang=lang))
    return Response(base64.b64decode(pdf.pdf_base64), media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{pdf.filename}"',
                             "Cache-Control": "private, no-store"})


@router.get("/worker/terms", response_model=support_rpc.TermsStatus,
            summary="Whether I accepted the current worker terms")
async def terms_status(actor: WorkerActor, rpc: Rpc,
                       lang: Lang = "ru") -> support_rpc.TermsStatus:
    return await rpc.call(support_rpc.TERMS_STATUS,
                          support_rpc.TermsStatusGet(actor=actor, lang=lang))


@router.post("/worker/terms/accept", response_model=support_rpc.TermsStatus,
             summary="Accept the current worker terms (recorded once per version)")
async def accept_terms(actor: WorkerActor, rpc: Rpc,
                       body: AcceptBody) -> support_rpc.TermsStatus:
    return await rpc.call(support_rpc.ACCEPT_TERMS,
                          request_of(body, support_rpc.TermsAccept, actor=actor))

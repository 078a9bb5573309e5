# mypy: disable-error-code="valid-type"
"""Leads: the public intake form for prospective requesters (no login) and the admins'
list of them.

The form's post goes to support with the client address (``deps.Address``: the socket
peer, or the hop before a trusted proxy, as the login throttles count it); support limits
the posts per address, asks for a captcha after a few and drops a honeypot hit silently
(still 202). A limited post is 429 with Retry-After; a captcha is 428 with the challenge
image in ``details``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from contracts.rpc import Actor, Page
from contracts.rpc import support as support_rpc
from gateway_service.deps import Address, AdminActor, Rpc
from gateway_service.errors import ApiError
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page
from servicekit.errors import RpcCallError

router = APIRouter(tags=["leads"])

# The gateway posts a lead as itself: the form has no user behind it.
LEADS_ACTOR = Actor(user_id="gateway:lead-form", role="admin")

LeadBody = body_of(support_rpc.LeadSubmit, "LeadBody", without={"address"}, doc={
    "website": "leave empty (a field people never see)",
    "captcha_id": "the challenge_id of a 428 captcha_required answer",
    "captcha_answer": "the text in that challenge's image"})
LeadChangeBody = body_of(support_rpc.LeadUpdate, "LeadChangeBody", without={"lead_id"})


@router.post("/leads", response_model=support_rpc.LeadAccepted,
             status_code=status.HTTP_202_ACCEPTED,
             summary="Send a message as a prospective requester (public; limited per address, "
                     "a captcha after a few posts)")
async def submit(rpc: Rpc, body: LeadBody, address: Address) -> support_rpc.LeadAccepted:
    req = request_of(body, support_rpc.LeadSubmit, actor=LEADS_ACTOR,
                     address=address or "unknown")
    try:
        return await rpc.call(support_rpc.SUBMIT_LEAD, req)
    except RpcCallError as e:
        if e.error.code == "lead_rate_limited":
            wait = int((e.error.details or {}).get("retry_after_s", 60))
            raise ApiError(429, e.error.code, e.error.message, details=e.error.details,
                           headers={"Retry-After": str(wait)}) from None
        raise


@router.get("/admin/leads", response_model=support_rpc.Leads,
            summary="Leads, newest first (admin)")
async def list_leads(actor: AdminActor, rpc: Rpc, p: Annotated[Page, Depends(page)],
                     status_: Annotated[support_rpc.LeadStatus | None,
                                        Query(alias="status")] = None) -> support_rpc.Leads:
    return await rpc.call(support_rpc.LIST_LEADS,
                          support_rpc.LeadList(actor=actor, page=p, status=status_))


@router.patch("/admin/leads/{lead_id}", response_model=support_rpc.Lead,
              summary="Set a lead's status (new / contacted / won / lost) or notes (admin)")
async def update_lead(actor: AdminActor, rpc: Rpc, lead_id: str,
                      body: LeadChangeBody) -> support_rpc.Lead:
    return await rpc.call(support_rpc.UPDATE_LEAD, request_of(
        body, support_rpc.LeadUpdate, actor=actor, lead_id=lead_id))

# mypy: disable-error-code="valid-type"
"""Webhooks (admin; the admin acts for the requester): subscribe a URL to event kinds (the
signing secret is shown once), see each subscription's deliveries with every attempt, and
send one again. Deliveries are made by the support service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from contracts.rpc import Page
from contracts.rpc import support as support_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page

router = APIRouter()

Sid = Annotated[str, Path(min_length=1, max_length=36)]
PageQ = Annotated[Page, Depends(page)]

WebhookBody = body_of(support_rpc.WebhookCreate, "WebhookBody", doc={
    "url": "where to POST (http or https; not a loopback or private address)",
    "kinds": "task.accepted, task.rejected, pool.closed, payout.changed, result.ready",
    "description": "a note for yourself"})


@router.post("/admin/webhooks", response_model=support_rpc.WebhookCreated,
             status_code=status.HTTP_201_CREATED, tags=["admin: webhooks"],
             summary="Subscribe a URL to event kinds (the secret is shown only now; audited)")
async def create_webhook(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                         body: WebhookBody) -> support_rpc.WebhookCreated:
    made = await rpc.call(support_rpc.CREATE_WEBHOOK,
                          request_of(body, support_rpc.WebhookCreate, actor=actor))
    await security.audit.record("webhook.created", actor.user_id, made.subscription_id,
                                {"url": made.url, "kinds": list(made.kinds)}, address=address)
    return made


@router.get("/admin/webhooks", response_model=support_rpc.Webhooks, tags=["admin: webhooks"],
            summary="Webhook subscriptions (without their secrets)")
async def list_webhooks(actor: AdminActor, rpc: Rpc, p: PageQ) -> support_rpc.Webhooks:
    return await rpc.call(support_rpc.LIST_WEBHOOKS,
                          support_rpc.WebhookList(actor=actor, page=p))


@router.post("/admin/webhooks/{subscription_id}/disable", response_model=support_rpc.Webhook,
             tags=["admin: webhooks"], summary="Stop a subscription (audited)")
async def disable_webhook(actor: AdminActor, rpc: Rpc, security: Security, address: Address,
                          subscription_id: Sid) -> support_rpc.Webhook:
    hook = await rpc.call(support_rpc.DISABLE_WEBHOOK, support_rpc.WebhookRef(
        actor=actor, subscription_id=subscription_id))
    await security.audit.record("webhook.disabled", actor.user_id, subscription_id, {},
                                address=address)
    return hook


@router.get("/admin/webhooks/{subscription_id}/deliveries",
            response_model=support_rpc.WebhookDeliveries, tags=["admin: webhooks"],
            summary="A subscription's deliveries, each with its attempts")
async def list_deliveries(actor: AdminActor, rpc: Rpc, subscription_id: Sid, p: PageQ,
                          status_: Annotated[support_rpc.DeliveryStatus | None,
                                             Query(alias="status")] = None,
                          ) -> support_rpc.WebhookDeliveries:
    return await rpc.call(support_rpc.LIST_DELIVERIES, support_rpc.DeliveryList(
        actor=actor, subscription_id=subscription_id, status=status_, page=p))


@router.post("/admin/webhook-deliveries/{delivery_id}/redeliver",
             response_model=support_rpc.WebhookDelivery, tags=["admin: webhooks"],
             summary="Send a delivery again now")
async def redeliver(actor: AdminActor, rpc: Rpc, delivery_id: Sid) -> support_rpc.WebhookDelivery:
    return await rpc.call(support_rpc.REDELIVER, support_rpc.Redeliver(
        actor=actor, delivery_id=delivery_id))

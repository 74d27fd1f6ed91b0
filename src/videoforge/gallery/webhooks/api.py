"""Routes of outgoing webhooks: a user registers endpoints for events about their own
videos, reads the delivery log and sends a test event. Only the owner of an endpoint
sees it (anyone else gets 404)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.routing import APIRoute

from videoforge.gallery.api import InfraDep, User
from videoforge.gallery.webhooks import actions, repository, service
from videoforge.gallery.webhooks.models import GalleryWebhook, GalleryWebhookDelivery
from videoforge.gallery.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookSecret,
    WebhookTestSent,
    WebhookUpdate,
)
from videoforge.infra.db import session_scope
from videoforge.infra.openapi import error_responses
from videoforge.paths import WEBHOOKS_PREFIX

router = APIRouter(responses=error_responses(), tags=["webhooks"])


def _read(webhook: GalleryWebhook) -> WebhookRead:
    return WebhookRead(
        id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        enabled=webhook.enabled,
        disabled_reason=webhook.disabled_reason,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def _delivery(row: GalleryWebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        state=row.state,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


@router.post(
    "/api/gallery/webhooks", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED
)
async def create_webhook(body: WebhookCreate, infra: InfraDep, principal: User) -> WebhookCreated:
    """Register an endpoint for some event types of the caller's own videos. The answer
    holds the signing secret, shown this once. The URL must be http(s) on an allowed
    port and resolve only to public addresses (422 `invalid_webhook_url`, with the
    reason in `details`); at most 25 per user (409 `webhook_limit_reached`)."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.create(
            session, infra.settings, service.sender_of(infra), principal, body
        )
        return WebhookCreated(**_read(webhook).model_dump(), secret=webhook.secret)


@router.get("/api/gallery/webhooks", response_model=WebhookList)
async def list_webhooks(infra: InfraDep, principal: User) -> WebhookList:
    """The caller's endpoints (never their secrets)."""
    async with infra.sessions() as session:
        return WebhookList(
            items=[_read(w) for w in await repository.list_of(session, principal.user_id)]
        )


@router.get("/api/gallery/webhooks/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: uuid.UUID, infra: InfraDep, principal: User) -> WebhookRead:
    """One of the caller's endpoints; 404 `webhook_not_found` for anyone else's."""
    async with infra.sessions() as session:
        return _read(await service.get_own(session, webhook_id, principal))


@router.patch("/api/gallery/webhooks/{webhook_id}", response_model=WebhookRead)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, infra: InfraDep, principal: User
) -> WebhookRead:
    """Change the URL (checked as at registration), the event types, or `enabled`
    (true re-enables an endpoint the gallery disabled after a 410 Gone)."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.get_own(session, webhook_id, principal)
        webhook = await service.update(
            session, infra.settings, service.sender_of(infra), webhook, body
        )
        return _read(webhook)


@router.delete("/api/gallery/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, infra: InfraDep, principal: User) -> Response:
    """Delete an endpoint and its delivery log; nothing more is sent to it."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.get_own(session, webhook_id, principal)
        await session.delete(webhook)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/gallery/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: uuid.UUID,
    infra: InfraDep,
    principal: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> DeliveryPage:
    """The endpoint's delivery log, the newest first: event id (the idempotency key) and
    type, attempts, the last status code or error, the next attempt and the state
    (`pending`, `delivered`, `failed`). Kept for seven days."""
    async with infra.sessions() as session:
        webhook = await service.get_own(session, webhook_id, principal)
        rows = await repository.log_page(session, webhook.id, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=[_delivery(r) for r in rows], next_before=rows[-1].id if more and rows else None
    )


@router.post(
    "/api/gallery/webhooks/{webhook_id}/test",
    response_model=WebhookTestSent,
    status_code=status.HTTP_202_ACCEPTED,
)
async def test_webhook(webhook_id: uuid.UUID, infra: InfraDep, principal: User) -> WebhookTestSent:
    """Queue a `webhook.test` event for this endpoint alone (signed and retried like any
    other); follow it in the delivery log."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.get_own(session, webhook_id, principal)
        event, delivery = await service.send_test(session, webhook)
        return WebhookTestSent(event_id=event.id, delivery_id=delivery.id)


@router.post(
    "/api/gallery/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeliver(
    webhook_id: uuid.UUID,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    infra: InfraDep,
    principal: User,
) -> DeliveryRead:
    """Send a finished delivery (`delivered` or `failed`) again, at once: the same event
    id, signed afresh. 409 `delivery_pending` while it is still being attempted, 409
    `webhook_disabled` for a disabled endpoint, 404 `delivery_not_found`."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.get_own(session, webhook_id, principal)
        return _delivery(await actions.redeliver(session, webhook, delivery_id))


@router.post("/api/gallery/webhooks/{webhook_id}/secret", response_model=WebhookSecret)
async def new_secret(webhook_id: uuid.UUID, infra: InfraDep, principal: User) -> WebhookSecret:
    """Replace the signing secret (lost, or leaked); the answer shows the new one, this
    once. Every attempt from now on is signed with it, retries of older events too."""
    async with session_scope(infra.sessions) as session:
        webhook = await service.get_own(session, webhook_id, principal)
        return WebhookSecret(id=webhook.id, secret=await actions.new_secret(session, webhook))


def _aliased(source: APIRouter) -> APIRouter:
    """The same routes at ``/api/webhooks``, the address integrators look for (as at
    Mux or Stripe); only ``/api/gallery/webhooks`` is in the OpenAPI document."""
    alias = APIRouter(responses=error_responses(), tags=["webhooks"])
    for route in source.routes:
        assert isinstance(route, APIRoute)
        alias.add_api_route(
            route.path.replace("/api/gallery/webhooks", WEBHOOKS_PREFIX, 1),
            route.endpoint,
            methods=sorted(route.methods or ()),
            response_model=route.response_model,
            status_code=route.status_code,
            response_class=route.response_class,
            responses=route.responses,
            include_in_schema=False,
        )
    return alias


alias_router = _aliased(router)

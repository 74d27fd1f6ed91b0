"""What an endpoint's owner does besides registering it: send a delivery again, and
replace the signing secret.

A **redelivery** makes a finished delivery (``delivered`` or ``failed``, e.g. after a
receiver was down longer than the retry budget) due again at once: the same event and
idempotency key, signed afresh, recorded in the same log row; it is retried only within
what is left of the original delivery's retry budget (an old one gets one attempt).
Events are kept seven days, and their deliveries with them. A **new secret** takes
effect for every attempt from then on, retries of older events included; it is shown
once, as at registration.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery.webhooks import repository, signing
from videoforge.gallery.webhooks.models import GalleryWebhook, GalleryWebhookDelivery
from videoforge.infra.db import utcnow
from videoforge.infra.errors import Conflict, NotFound


async def redeliver(
    session: AsyncSession, webhook: GalleryWebhook, delivery_id: int
) -> GalleryWebhookDelivery:
    """Make ``webhook``'s finished delivery due now; 404 ``delivery_not_found`` (not this
    endpoint's, or its event expired), 409 ``delivery_pending`` (it is still being
    attempted) or ``webhook_disabled`` (nothing would be sent)."""
    delivery = await session.get(GalleryWebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound("No such delivery for this webhook.", code="delivery_not_found")
    if not webhook.enabled:
        raise Conflict(
            "This webhook is disabled; enable it before sending anything again.",
            code="webhook_disabled",
        )
    if not await repository.make_due_again(session, delivery_id, now=utcnow()):
        raise Conflict(
            "This delivery is still pending: it will be attempted again anyway.",
            code="delivery_pending",
        )
    await session.refresh(delivery)
    return delivery


async def new_secret(session: AsyncSession, webhook: GalleryWebhook) -> str:
    """Replace the endpoint's signing secret; returns the new one (shown once)."""
    webhook.secret = signing.new_secret()
    webhook.updated_at = utcnow()
    await session.flush()
    return webhook.secret


__all__ = ["new_secret", "redeliver"]

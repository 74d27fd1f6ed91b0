"""The upload sweeper: deletes only what expired, unconfirmed sessions left behind, and
can never take an object that a confirm claimed."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from videoforge.gallery.models import GalleryUpload, UploadState
from videoforge.gallery.sweep import GRACE, sweep_uploads
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.keys import final_key

from .conftest import Users


async def _issue(client: httpx.AsyncClient, users: Users, size: int) -> dict[str, object]:
    r = await client.post(
        "/api/upload/url",
        json={"filename": "a.mp4", "content_type": "video/mp4", "size": size},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _state(infra: Infra, key: str) -> UploadState:
    async with infra.sessions() as session:
        row = await session.get(GalleryUpload, key)
    assert row is not None
    return row.state


async def test_sweep_removes_only_expired_unconfirmed_uploads(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    abandoned = await _issue(client, users, len(tiny_mp4))
    confirmed = await _issue(client, users, len(tiny_mp4))
    fresh = await _issue(client, users, len(tiny_mp4))
    for ticket in (abandoned, confirmed, fresh):
        await infra.storage.put_bytes(str(ticket["key"]), tiny_mp4, content_type="video/mp4")
    r = await client.post(
        "/api/upload/confirm", json={"key": confirmed["key"]}, headers=users.owner
    )
    assert r.status_code == 201

    ttl = timedelta(seconds=infra.settings.upload_url_ttl)
    # Just inside the grace period: nothing happens yet.
    assert await sweep_uploads(infra, now=utcnow() + ttl + GRACE - timedelta(minutes=5)) == 0
    # After expiry + grace, the abandoned AND the confirmed session are both old, but
    # only the unconfirmed one is swept; the newer one is not yet expired.
    async with session_scope(infra.sessions) as session:
        await session.execute(
            update(GalleryUpload)
            .where(GalleryUpload.key == fresh["key"])
            .values(expires_at=utcnow() + ttl * 10)
        )
    later = utcnow() + ttl + GRACE + timedelta(minutes=1)
    assert await sweep_uploads(infra, now=later) == 1
    assert await infra.storage.head(str(abandoned["key"])) is None
    assert await _state(infra, str(abandoned["key"])) is UploadState.SWEPT
    # The confirmed original (at its own key) is untouched.
    assert await infra.storage.head(final_key(str(confirmed["key"]))) is not None
    assert await _state(infra, str(confirmed["key"])) is UploadState.CONFIRMED
    assert await infra.storage.head(str(fresh["key"])) is not None
    # Idempotent; a swept upload can no longer be confirmed.
    assert await sweep_uploads(infra, now=later) == 0
    r = await client.post(
        "/api/upload/confirm", json={"key": abandoned["key"]}, headers=users.owner
    )
    assert r.status_code == 404


async def test_sweep_aborts_abandoned_multipart_uploads(
    client: httpx.AsyncClient, infra: Infra, users: Users
) -> None:
    size = infra.settings.upload_multipart_threshold + 1
    ticket = await _issue(client, users, size)
    multipart = ticket["multipart"]
    assert isinstance(multipart, dict)
    upload_id = multipart["upload_id"]
    assert any(uid == upload_id for _, uid, _ in await infra.storage.list_multipart_uploads(""))
    ttl = timedelta(seconds=infra.settings.upload_url_ttl)
    assert await sweep_uploads(infra, now=utcnow() + ttl + GRACE + timedelta(minutes=1)) == 1
    assert all(uid != upload_id for _, uid, _ in await infra.storage.list_multipart_uploads(""))


async def test_confirm_after_the_sweep_claimed_is_refused(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    ticket = await _issue(client, users, len(tiny_mp4))
    key = str(ticket["key"])
    await infra.storage.put_bytes(key, tiny_mp4, content_type="video/mp4")
    # The sweeper's conditional update wins first...
    async with session_scope(infra.sessions) as session:
        await session.execute(
            update(GalleryUpload)
            .where(GalleryUpload.key == key, GalleryUpload.state == UploadState.ISSUED)
            .values(state=UploadState.SWEPT)
        )
    # ...so confirm cannot create a video whose original is about to be deleted.
    r = await client.post("/api/upload/confirm", json={"key": key}, headers=users.owner)
    assert r.status_code == 404

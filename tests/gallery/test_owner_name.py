"""The uploader's display name is recorded on the video and shown to everyone; the
uploader's e-mail address (their token's ``username``) never reaches another user.

Real app, real tokens from the issuer, real bytes through the local store, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlalchemy import update

from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.db import session_scope
from videoforge.infra.runtime import Infra

from .conftest import Users, store_upload

EMAIL = "ada.lovelace@example.com"


def _bearer(infra: Infra, user_id: str, *, display_name: str | None) -> dict[str, str]:
    issuer = TokenIssuer.from_settings(infra.settings, key=infra.signing_key)
    # Local accounts put the e-mail address in ``username``: it must stay server-side.
    token = issuer.issue_access(user_id, username=EMAIL, display_name=display_name)
    return {"Authorization": f"Bearer {token}"}


async def test_confirmed_upload_shows_display_name_never_email(
    client: httpx.AsyncClient, users: Users, infra: Infra, tiny_mp4: bytes
) -> None:
    owner = _bearer(infra, users.owner_id, display_name="Ada Lovelace")
    key = await store_upload(client, owner, tiny_mp4)
    confirmed = await client.post(
        "/api/upload/confirm",
        json={"key": key, "title": "Engines", "visibility": "public"},
        headers=owner,
    )
    assert confirmed.status_code == 201, confirmed.text
    video = confirmed.json()
    assert video["owner_name"] == "Ada Lovelace"

    # Processing finished (what the processor's COMPLETED event does): now publicly listed.
    async with session_scope(infra.sessions) as session:
        await session.execute(
            update(GalleryVideo)
            .where(GalleryVideo.id == uuid.UUID(video["id"]))
            .values(status=VideoStatus.READY)
        )

    anonymous: dict[str, str] = {}
    for viewer in (users.other, anonymous):  # another user, and an anonymous visitor
        listed = await client.get("/api/gallery/videos", headers=viewer)
        assert listed.status_code == 200, listed.text
        items = [v for v in listed.json()["items"] if v["id"] == video["id"]]
        assert [v["owner_name"] for v in items] == ["Ada Lovelace"]
        got = await client.get(f"/api/gallery/videos/{video['id']}", headers=viewer)
        assert got.status_code == 200, got.text
        assert got.json()["owner_name"] == "Ada Lovelace"
        for body in (listed.text, got.text):
            assert EMAIL not in body
            assert "@" not in json.dumps(json.loads(body))


async def test_import_records_a_neutral_name_without_display_name(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    owner = _bearer(infra, users.owner_id, display_name=None)
    created = await client.post(
        "/api/gallery/videos",
        json={
            "title": "Imported",
            "source_url": "https://media.example.org/clip.mp4",
            "visibility": "public",
        },
        headers=owner,
    )
    assert created.status_code == 201, created.text
    name = created.json()["owner_name"]
    assert name == f"user-{users.owner_id.replace('-', '')[:6]}"
    async with session_scope(infra.sessions) as session:
        stored = await session.get(GalleryVideo, uuid.UUID(created.json()["id"]))
        assert stored is not None
        assert stored.owner_name == name
    got = await client.get(f"/api/gallery/videos/{created.json()['id']}", headers=owner)
    assert got.json()["owner_name"] == name
    assert EMAIL not in got.text

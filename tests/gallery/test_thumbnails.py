"""The owner chooses the thumbnail through the API, on SQLite and PostgreSQL: one of the
candidates of the COMPLETED event, or an uploaded image stored re-encoded under the
video's own prefix; the choice survives a re-process and the image goes with the video."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
from PIL import Image

from videoforge.gallery.events import apply_event
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.messages import JobEvent, JobStatus

from .conftest import SeedVideo, Users


async def _complete(infra: Infra, video: GalleryVideo, seq: int = 1) -> uuid.UUID:
    """Apply a COMPLETED event of a new job with three candidates whose objects exist."""
    job = uuid.uuid4()
    candidates = [f"outputs/{job}/thumbnails/{n}.jpg" for n in (1, 2, 3)]
    for key in [f"outputs/{job}/thumbnail.jpg", *candidates]:
        await infra.storage.put_bytes(key, b"\xff\xd8jpeg", content_type="image/jpeg")
    event = JobEvent(
        job_id=job,
        video_id=video.id,
        user_id=video.user_id,
        seq=seq,
        status=JobStatus.COMPLETED,
        progress=100,
        at=utcnow(),
        thumbnail_key=f"outputs/{job}/thumbnail.jpg",
        thumbnail_candidates=candidates,
        hls_master_key=f"outputs/{job}/hls/master.m3u8",
    )
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event)
    return job


async def _shown_key(infra: Infra, video_id: uuid.UUID) -> str | None:
    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, video_id)
    assert video is not None
    return video.thumbnail_key


def _png(size: tuple[int, int] = (640, 360)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (0, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    image.save(out, format="PNG", exif=exif)
    return out.getvalue()


async def test_the_owner_picks_a_candidate_and_it_survives_a_reprocess(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.PROCESSING)
    url = f"/api/gallery/videos/{video.id}/thumbnail"
    r = await client.put(url, json={"candidate": 2}, headers=users.owner)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "thumbnail_candidates_not_ready")

    job = await _complete(infra, video)
    body = (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()
    assert body["thumbnail_choice"] == "auto"
    assert [c["number"] for c in body["thumbnail_candidates"]] == [1, 2, 3]
    assert all(f"thumbnails/{c['number']}.jpg" in c["url"] for c in body["thumbnail_candidates"])
    # Others see the thumbnail, never the choices.
    assert (await client.get(f"/api/gallery/videos/{video.id}")).json()[
        "thumbnail_candidates"
    ] == []

    r = await client.put(url, json={"candidate": 4}, headers=users.owner)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_such_thumbnail_candidate")
    for who, status in ((users.other, 403), ({}, 401), (users.admin, 403)):
        r = await client.put(url, json={"candidate": 1}, headers=who)
        assert r.status_code == status, r.text

    r = await client.put(url, json={"candidate": 2}, headers=users.owner)
    assert r.status_code == 200, r.text
    assert (r.json()["thumbnail_choice"], r.json()["thumbnail_candidate"]) == ("candidate", 2)
    assert f"outputs/{job}/thumbnails/2.jpg" in r.json()["thumbnail_url"]
    assert r.json()["version"] == body["version"]  # no conflict with a text edit
    assert await _shown_key(infra, video.id) == f"outputs/{job}/thumbnails/2.jpg"

    again = await _complete(infra, video)
    assert await _shown_key(infra, video.id) == f"outputs/{again}/thumbnails/2.jpg"


async def test_an_uploaded_image_is_stored_re_encoded_and_replaced_cleanly(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.PROCESSING)
    url = f"/api/gallery/videos/{video.id}/thumbnail/image"
    png = _png()
    for who, status in ((users.other, 403), ({}, 401)):
        r = await client.put(url, content=png, headers={**who, "Content-Type": "image/png"})
        assert r.status_code == status, r.text

    r = await client.put(url, content=png, headers={**users.owner, "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json()["thumbnail_choice"] == "custom"
    first = await _shown_key(infra, video.id)
    assert first is not None
    assert first.startswith(f"thumbnails/{video.id}/")
    assert first.endswith(".jpg")
    stored = await infra.storage.get_bytes(first)
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))

    # Processing completing later keeps the owner's image.
    await _complete(infra, video)
    assert await _shown_key(infra, video.id) == first

    r = await client.put(url, content=png, headers={**users.owner, "Content-Type": "image/png"})
    second = await _shown_key(infra, video.id)
    assert second not in (None, first)
    assert await infra.storage.head(first) is None  # the replaced image is gone

    # Back to a candidate: the owner's image is deleted too.
    r = await client.put(
        f"/api/gallery/videos/{video.id}/thumbnail", json={"candidate": 1}, headers=users.owner
    )
    assert r.json()["thumbnail_choice"] == "candidate"
    assert second is not None
    assert await infra.storage.head(second) is None


async def test_bad_images_are_refused_and_change_nothing(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, thumbnail_key="outputs/j/thumbnail.jpg")
    url = f"/api/gallery/videos/{video.id}/thumbnail/image"
    cases: list[tuple[bytes, int, str]] = [
        (b"<svg onload=alert(1)>", 415, "unsupported_image_type"),
        (b"\x00" * (5 * 1024 * 1024 + 1), 413, "thumbnail_too_large"),
        (_png()[:200], 422, "invalid_image"),
    ]
    for data, status, code in cases:
        r = await client.put(
            url, content=data, headers={**users.owner, "Content-Type": "image/png"}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert await _shown_key(infra, video.id) == "outputs/j/thumbnail.jpg"
    assert [o async for o in infra.storage.list(f"thumbnails/{video.id}/")] == []


async def test_deleting_the_video_deletes_its_image_and_usage_counts_it(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    r = await client.put(
        f"/api/gallery/videos/{video.id}/thumbnail/image",
        content=_png(),
        headers={**users.owner, "Content-Type": "image/png"},
    )
    key = await _shown_key(infra, video.id)
    assert key is not None
    info = await infra.storage.head(key)
    assert info is not None
    body = (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()
    assert body["storage_bytes"] == info.size

    r = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    assert await infra.storage.head(key) is None


async def test_openapi_shows_the_thumbnail_routes(client: httpx.AsyncClient) -> None:
    paths: dict[str, Any] = (await client.get("/api/gallery/openapi.json")).json()["paths"]
    assert "put" in paths["/api/gallery/videos/{video_id}/thumbnail"]
    upload = paths["/api/gallery/videos/{video_id}/thumbnail/image"]["put"]
    assert set(upload["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}

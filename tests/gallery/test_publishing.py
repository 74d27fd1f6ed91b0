"""Publishing through the API, on SQLite and PostgreSQL: drafts, "publish when ready" and
scheduled videos are seen by their owner (and admins) only, in every place a video can
be reached, until they are published; bad choices are clear 422s."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from videoforge.gallery import publishing
from videoforge.gallery.events import apply_event
from videoforge.gallery.lifecycle import delivery as lifecycle_delivery
from videoforge.gallery.lifecycle.models import GalleryLifecycleEvent
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.messages import JobEvent, JobStatus

from .conftest import SeedVideo, Users

WORD = "platypus"


def _ready(job: uuid.UUID) -> dict[str, Any]:
    return {
        "hls_master_key": f"outputs/{job}/hls/master.m3u8",
        "thumbnail_key": f"outputs/{job}/thumbnail.jpg",
        "job_id": job,
        "duration": 3.0,
        "renditions": [
            {
                "quality": "240p",
                "width": 320,
                "height": 240,
                "bandwidth": 400000,
                "mp4_key": f"outputs/{job}/240p.mp4",
                "playlist_key": f"outputs/{job}/hls/240p/index.m3u8",
            }
        ],
    }


async def _reachable(
    client: httpx.AsyncClient, users: Users, video_id: uuid.UUID, headers: dict[str, str]
) -> dict[str, bool]:
    """Where ``video_id`` shows for the caller of ``headers``."""
    url = f"/api/gallery/videos/{video_id}"
    listed = (await client.get("/api/gallery/videos", headers=headers)).json()["items"]
    found = (await client.get("/api/gallery/videos", params={"q": WORD}, headers=headers)).json()
    channel = await client.get(
        "/api/gallery/videos", params={"owner": users.owner_id}, headers=headers
    )
    comments = await client.get(f"{url}/comments", headers=headers)
    return {
        "watch": (await client.get(url, headers=headers)).status_code == 200,
        "stream": (await client.get(f"/api/gallery/stream/{video_id}", headers=headers)).status_code
        == 200,
        "listing": str(video_id) in [v["id"] for v in listed],
        "search": str(video_id) in [v["id"] for v in found["items"]],
        "channel": str(video_id) in [v["id"] for v in channel.json()["items"]],
        "comments": comments.status_code == 200,
    }


EVERYWHERE = dict.fromkeys(("watch", "stream", "listing", "search", "channel", "comments"), True)
NOWHERE = dict.fromkeys(EVERYWHERE, False)


async def _completed(infra: Infra, video: GalleryVideo, **fields: Any) -> None:
    job = uuid.uuid4()
    event = JobEvent(
        job_id=job,
        video_id=video.id,
        user_id=video.user_id,
        seq=1,
        status=JobStatus.COMPLETED,
        progress=100,
        at=utcnow(),
        duration=3.0,
        width=320,
        height=240,
        thumbnail_key=f"outputs/{job}/thumbnail.jpg",
        hls_master_key=f"outputs/{job}/hls/master.m3u8",
        **fields,
    )
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event)


async def test_a_draft_is_seen_by_its_owner_and_admins_only_until_published(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title=f"A {WORD}", **_ready(uuid.uuid4()))
    url = f"/api/gallery/videos/{video.id}"
    r = await client.put(url, json={"publish": "draft"}, headers=users.owner)
    assert r.status_code == 200, r.text
    assert (r.json()["publish_state"], r.json()["publish_at"]) == ("draft", None)

    for who in ({}, users.other):
        assert await _reachable(client, users, video.id, who) == NOWHERE
    for who in (users.owner, users.admin):
        assert await _reachable(client, users, video.id, who) == EVERYWHERE

    r = await client.put(url, json={"publish": "now"}, headers=users.owner)
    assert r.json()["publish_state"] == "published"
    for who in ({}, users.other):
        assert await _reachable(client, users, video.id, who) == EVERYWHERE


async def test_playlists_show_a_draft_as_unavailable_to_others(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, draft=True, **_ready(uuid.uuid4()))
    r = await client.post(
        "/api/gallery/playlists",
        json={"title": "Mine", "visibility": "public"},
        headers=users.owner,
    )
    playlist = r.json()["id"]
    r = await client.post(
        f"/api/gallery/playlists/{playlist}/videos",
        json={"video_id": str(video.id)},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    # Nobody else can add it (it does not exist for them).
    theirs = await client.post(
        "/api/gallery/playlists", json={"title": "Theirs"}, headers=users.other
    )
    r = await client.post(
        f"/api/gallery/playlists/{theirs.json()['id']}/videos",
        json={"video_id": str(video.id)},
        headers=users.other,
    )
    assert r.status_code == 404

    async def shown(headers: dict[str, str]) -> list[bool]:
        r = await client.get(f"/api/gallery/playlists/{playlist}/videos", headers=headers)
        return [item["available"] for item in r.json()["items"]]

    assert await shown(users.owner) == [True]
    assert await shown({}) == [False]
    await client.put(
        f"/api/gallery/videos/{video.id}", json={"publish": "now"}, headers=users.owner
    )
    assert await shown({}) == [True]


async def test_publish_when_ready_publishes_when_processing_completes(
    client: httpx.AsyncClient, users: Users, infra: Infra
) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={
            "title": f"Imported {WORD}",
            "visibility": "public",
            "source_url": "https://example.com/v.mp4",
            "publish": "when_ready",
        },
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    assert r.json()["publish_state"] == "when_ready"
    video_id = uuid.UUID(r.json()["id"])
    assert (await client.get(f"/api/gallery/videos/{video_id}")).status_code == 404

    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, video_id)
    assert video is not None
    await _completed(infra, video)

    r = await client.get(f"/api/gallery/videos/{video_id}")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["publish_state"]) == ("ready", "published")
    assert await _reachable(client, users, video_id, {}) == EVERYWHERE


async def test_a_draft_stays_a_draft_when_processing_completes(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.PROCESSING, draft=True)
    await _completed(infra, video)
    r = await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert (r.json()["status"], r.json()["publish_state"]) == ("ready", "draft")
    assert (await client.get(f"/api/gallery/videos/{video.id}")).status_code == 404


async def test_when_ready_on_a_ready_video_publishes_it_now(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, draft=True, **_ready(uuid.uuid4()))
    r = await client.put(
        f"/api/gallery/videos/{video.id}", json={"publish": "when_ready"}, headers=users.owner
    )
    assert r.json()["publish_state"] == "published"
    assert (await client.get(f"/api/gallery/videos/{video.id}")).status_code == 200


async def test_a_scheduled_video_appears_when_its_time_passes(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    video = await seed_video(users.owner_id, title=f"Soon {WORD}", **_ready(uuid.uuid4()))
    when = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    r = await client.put(
        f"/api/gallery/videos/{video.id}",
        json={"publish": "schedule", "publish_at": when.isoformat()},
        headers=users.owner,
    )
    assert r.status_code == 200, r.text
    assert r.json()["publish_state"] == "scheduled"
    assert datetime.fromisoformat(r.json()["publish_at"]) == when
    assert await _reachable(client, users, video.id, {}) == NOWHERE
    assert await _reachable(client, users, video.id, users.owner) == EVERYWHERE

    # A second before and a second after, as the database compares them.
    monkeypatch.setattr(publishing, "utcnow", lambda: when - timedelta(seconds=1))
    assert await _reachable(client, users, video.id, {}) == NOWHERE
    monkeypatch.setattr(publishing, "utcnow", lambda: when + timedelta(seconds=1))
    assert await _reachable(client, users, video.id, {}) == EVERYWHERE
    r = await client.get(f"/api/gallery/videos/{video.id}")
    assert r.json()["publish_state"] == "published"


async def test_only_publish_at_means_schedule(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    when = utcnow() + timedelta(days=1)
    r = await client.put(
        f"/api/gallery/videos/{video.id}",
        json={"publish_at": when.isoformat()},
        headers=users.owner,
    )
    assert r.json()["publish_state"] == "scheduled"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"publish": "schedule"}, "publish_at_required"),
        ({"publish": "schedule", "publish_at": "2020-01-01T00:00:00Z"}, "publish_at_in_past"),
        ({"publish": "schedule", "publish_at": "2099-01-01T00:00:00Z"}, "publish_at_too_far"),
        ({"publish": "draft", "publish_at": "2099-01-01T00:00:00Z"}, "publish_at_unexpected"),
        ({"publish": "schedule", "publish_at": "2030-01-01T00:00:00"}, "validation_error"),
        ({"publish": "later"}, "validation_error"),
        ({"publish": None}, "validation_error"),
    ],
)
async def test_bad_choices_are_422_and_change_nothing(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    body: dict[str, Any],
    code: str,
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}"
    r = await client.put(url, json=body, headers=users.owner)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    after = (await client.get(url, headers=users.owner)).json()
    assert (after["publish_state"], after["version"]) == ("published", 1)


async def test_an_upload_can_be_confirmed_as_a_draft(
    client: httpx.AsyncClient, users: Users, tiny_mp4: bytes
) -> None:
    r = await client.post(
        "/api/upload/url",
        json={"filename": "clip.mp4", "content_type": "video/mp4", "size": len(tiny_mp4)},
        headers=users.owner,
    )
    ticket = r.json()
    single = ticket["single"]
    r = await client.post(
        single["url"], data=single["fields"], files={"file": ("clip.mp4", tiny_mp4, "video/mp4")}
    )
    assert r.status_code in (200, 201, 204), r.text
    # A time already past is refused before the upload is used up...
    r = await client.post(
        "/api/upload/confirm",
        json={"key": ticket["key"], "publish": "schedule", "publish_at": "2020-01-01T00:00Z"},
        headers=users.owner,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "publish_at_in_past")
    # ...so the same upload can still be confirmed.
    r = await client.post(
        "/api/upload/confirm",
        json={"key": ticket["key"], "visibility": "public", "publish": "draft"},
        headers=users.owner,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["visibility"], r.json()["publish_state"]) == ("public", "draft")
    assert (await client.get(f"/api/gallery/videos/{r.json()['id']}")).status_code == 404


async def test_without_a_choice_videos_are_published_as_before(
    client: httpx.AsyncClient, users: Users
) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "t", "visibility": "public", "source_url": "https://example.com/v.mp4"},
        headers=users.owner,
    )
    assert (r.json()["publish_state"], r.json()["publish_at"]) == ("published", None)


async def test_openapi_documents_the_choice(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/api/gallery/openapi.json")).json()["components"]["schemas"]
    for name in ("VideoUpdate", "VideoCreate", "UploadConfirm"):
        assert {"publish", "publish_at"} <= set(schemas[name]["properties"]), name
    assert set(schemas["PublishMode"]["enum"]) == {"now", "when_ready", "draft", "schedule"}
    assert set(schemas["PublishState"]["enum"]) == {
        "published",
        "scheduled",
        "when_ready",
        "draft",
    }
    assert "publish_at_in_past" in schemas["VideoUpdate"]["properties"]["publish_at"]["description"]


def test_decide_keeps_the_date_of_a_published_video() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    then = now - timedelta(days=3)
    current = publishing.Publishing(False, False, then)
    for mode in (publishing.PublishMode.NOW, publishing.PublishMode.WHEN_READY):
        assert publishing.decide(
            mode, None, now=now, status=VideoStatus.READY, current=current
        ) == (current)
    waiting = publishing.decide(
        publishing.PublishMode.WHEN_READY, None, now=now, status=VideoStatus.PROCESSING
    )
    assert waiting == publishing.Publishing(True, True, None)


async def _published_events(infra: Infra, video_id: uuid.UUID) -> list[dict[str, Any]]:
    async with infra.sessions() as session:
        rows = (
            await session.execute(
                select(GalleryLifecycleEvent).where(
                    GalleryLifecycleEvent.video_id == video_id,
                    GalleryLifecycleEvent.type == "video.published",
                )
            )
        ).scalars()
        return [dict(row.data) for row in rows]


async def test_publication_is_announced_once_when_it_comes(
    client: httpx.AsyncClient,
    users: Users,
    infra: Infra,
    seed_video: SeedVideo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ready = _ready(uuid.uuid4())
    scheduled = await seed_video(users.owner_id, title="Soon", **ready)
    draft = await seed_video(users.owner_id, title="Held", **_ready(uuid.uuid4()))
    public = await seed_video(users.owner_id, title="Out already", **_ready(uuid.uuid4()))
    when = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    await client.put(
        f"/api/gallery/videos/{scheduled.id}",
        json={"publish_at": when.isoformat()},
        headers=users.owner,
    )
    await client.put(
        f"/api/gallery/videos/{draft.id}", json={"publish": "draft"}, headers=users.owner
    )
    await client.put(
        f"/api/gallery/videos/{public.id}", json={"publish": "now"}, headers=users.owner
    )

    assert await lifecycle_delivery.announce_once(infra) == 0  # nothing public yet
    await client.put(
        f"/api/gallery/videos/{draft.id}", json={"publish": "now"}, headers=users.owner
    )
    assert await lifecycle_delivery.announce_once(infra) == 1
    (announced,) = await _published_events(infra, draft.id)
    assert (announced["title"], announced["video_id"]) == ("Held", str(draft.id))

    monkeypatch.setattr(publishing, "utcnow", lambda: when + timedelta(seconds=1))
    assert await lifecycle_delivery.announce_once(infra) == 1
    assert await lifecycle_delivery.announce_once(infra) == 0  # once, however many rounds
    (due,) = await _published_events(infra, scheduled.id)
    assert datetime.fromisoformat(due["published_at"]) == when
    assert await _published_events(infra, public.id) == []
    assert await _published_events(infra, draft.id) == [announced]


async def test_publish_when_ready_is_announced_after_processing(
    client: httpx.AsyncClient, users: Users, infra: Infra, seed_video: SeedVideo
) -> None:
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "t", "source_url": "https://example.com/v.mp4", "publish": "when_ready"},
        headers=users.owner,
    )
    video_id = uuid.UUID(r.json()["id"])
    assert await lifecycle_delivery.announce_once(infra) == 0
    async with infra.sessions() as session:
        video = await session.get(GalleryVideo, video_id)
    assert video is not None
    await _completed(infra, video)
    assert await lifecycle_delivery.announce_once(infra) == 1
    assert len(await _published_events(infra, video_id)) == 1

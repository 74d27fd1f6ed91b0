"""Storage accounting: each video's ``storage_bytes`` and each user's total agree with
the object store's own listing after an upload, processing, a retry, a re-process and
deletes; quotas refuse uploads at upload-URL time; admins list usage and set quotas;
deleting all of a user's videos removes their objects and nobody else's."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from videoforge.gallery.events import consume_once
from videoforge.gallery.webhooks.models import GalleryWebhook
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra
from videoforge.messages import JobEvent, JobStatus, Rendition

from .conftest import Users, store_upload


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    return {"STORAGE_QUOTA_BYTES": 10_000_000}


async def _listed(infra: Infra, *prefixes: str) -> int:
    """The object store's own count of the bytes under the prefixes."""
    total = 0
    for prefix in prefixes:
        async for info in infra.storage.list(prefix):
            total += info.size
    return total


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes
) -> dict[str, Any]:
    key = await store_upload(client, headers, data)
    confirmed = await client.post("/api/upload/confirm", json={"key": key}, headers=headers)
    assert confirmed.status_code == 201, confirmed.text
    return dict(confirmed.json())


async def _process(
    infra: Infra, video: dict[str, Any], job: uuid.UUID, *, sizes: dict[str, int], seq: int = 1
) -> None:
    """What a processor does: outputs into storage, then COMPLETED on the events queue
    (which carries no sizes), applied by the gallery's consumer."""
    for name, size in sizes.items():
        await infra.storage.put_bytes(
            f"outputs/{job}/{name}", b"o" * size, content_type="application/octet-stream"
        )
    event = JobEvent(
        job_id=job,
        video_id=uuid.UUID(video["id"]),
        user_id=video["user_id"],
        seq=seq,
        status=JobStatus.COMPLETED,
        at=utcnow() + timedelta(seconds=seq),
        width=64,
        height=48,
        hls_master_key=f"outputs/{job}/hls/master.m3u8",
        thumbnail_key=f"outputs/{job}/thumbnail.jpg",
        renditions=[
            Rendition(
                quality="48p",
                width=64,
                height=48,
                bandwidth=1000,
                mp4_key=f"outputs/{job}/48p.mp4",
                playlist_key=f"outputs/{job}/hls/48p/index.m3u8",
            )
        ],
    )
    await infra.queues.events.send(event.dumps())
    assert await consume_once(infra, wait_seconds=0.1) == 1


async def _video(client: httpx.AsyncClient, video_id: str, headers: dict[str, str]) -> Any:
    r = await client.get(f"/api/gallery/videos/{video_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _usage(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    r = await client.get("/api/gallery/me/usage", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_numbers_match_the_store_through_upload_processing_retry_reprocess_and_delete(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    video = await _upload(client, users.owner, tiny_mp4)
    original_dir = video["s3_key"].rsplit("/", 1)[0] + "/"
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == len(tiny_mp4)
    assert (await _usage(client, users.owner))["used_bytes"] == len(tiny_mp4)

    first = uuid.uuid4()
    outputs = {"hls/master.m3u8": 300, "48p.mp4": 5000, "thumbnail.jpg": 700, "hls/48p/0.m4s": 4000}
    await _process(infra, video, first, sizes=outputs)
    expected = await _listed(infra, original_dir, f"outputs/{first}/")
    assert expected == len(tiny_mp4) + sum(outputs.values())
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == expected

    # The same event again (at-least-once delivery) changes nothing.
    await _process(infra, video, first, sizes=outputs)
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == expected

    # A re-process: a second job's outputs are stored beside the first's until deleted.
    second = uuid.uuid4()
    await _process(infra, video, second, sizes={"48p.mp4": 6000, "hls/master.m3u8": 310})
    expected = await _listed(infra, original_dir, f"outputs/{first}/", f"outputs/{second}/")
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == expected
    usage = await _usage(client, users.owner)
    assert usage["used_bytes"] == expected
    assert usage["quota_bytes"] == 10_000_000
    assert usage["videos"] == 1

    # Others never see the number (a public video, seen by another user and anonymously).
    made_public = await client.put(
        f"/api/gallery/videos/{video['id']}", json={"visibility": "public"}, headers=users.owner
    )
    assert made_public.status_code == 200, made_public.text
    assert (await _video(client, video["id"], users.other))["storage_bytes"] is None
    assert (await _video(client, video["id"], {}))["storage_bytes"] is None

    deleted = await client.delete(f"/api/gallery/videos/{video['id']}", headers=users.owner)
    assert deleted.status_code == 204
    assert await _listed(infra, original_dir, "outputs/") == 0
    assert (await _usage(client, users.owner))["used_bytes"] == 0


async def test_an_upload_over_the_quota_is_refused_with_the_room_left(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    await _upload(client, users.owner, tiny_mp4)
    room = 10_000_000 - len(tiny_mp4)
    over = await client.post(
        "/api/upload/url",
        json={"filename": "big.mp4", "content_type": "video/mp4", "size": room + 1},
        headers=users.owner,
    )
    assert over.status_code == 413
    error = over.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "left" in error["message"]
    assert error["details"]["available_bytes"] == room

    # An upload handed out reserves its room until confirmed (or expired).
    fits = await client.post(
        "/api/upload/url",
        json={"filename": "ok.mp4", "content_type": "video/mp4", "size": room},
        headers=users.owner,
    )
    assert fits.status_code == 201, fits.text
    again = await client.post(
        "/api/upload/url",
        json={"filename": "one-more.mp4", "content_type": "video/mp4", "size": 1},
        headers=users.owner,
    )
    assert again.json()["error"]["code"] == "quota_exceeded"
    # Another user has their own room.
    other = await client.post(
        "/api/upload/url",
        json={"filename": "x.mp4", "content_type": "video/mp4", "size": room},
        headers=users.other,
    )
    assert other.status_code == 201


async def test_admins_set_quotas_and_list_usage(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    await _upload(client, users.owner, tiny_mp4)
    path = f"/api/gallery/admin/users/{users.owner_id}/quota"
    refused = await client.put(path, json={"quota_bytes": 1}, headers=users.owner)
    assert refused.status_code == 403
    assert (await client.get("/api/gallery/admin/usage", headers=users.owner)).status_code == 403

    tight = await client.put(path, json={"quota_bytes": len(tiny_mp4) + 10}, headers=users.admin)
    assert tight.status_code == 200, tight.text
    assert tight.json()["quota_bytes"] == len(tiny_mp4) + 10
    assert tight.json()["quota_is_custom"] is True
    over = await client.post(
        "/api/upload/url",
        json={"filename": "b.mp4", "content_type": "video/mp4", "size": 11},
        headers=users.owner,
    )
    assert over.json()["error"]["code"] == "quota_exceeded"

    listing = await client.get("/api/gallery/admin/usage", headers=users.admin)
    assert listing.status_code == 200
    row = next(i for i in listing.json()["items"] if i["user_id"] == users.owner_id)
    assert row["used_bytes"] == len(tiny_mp4)
    assert row["videos"] == 1

    back = await client.put(path, json={"quota_bytes": None}, headers=users.admin)
    assert back.json()["quota_bytes"] == 10_000_000
    assert back.json()["quota_is_custom"] is False
    bad = await client.put(path, json={"quota_bytes": -1}, headers=users.admin)
    assert bad.status_code == 422


async def test_deleting_all_of_a_users_videos_removes_their_objects_only(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    mine = [await _upload(client, users.owner, tiny_mp4) for _ in range(2)]
    theirs = await _upload(client, users.other, tiny_mp4)
    job = uuid.uuid4()
    await _process(infra, mine[0], job, sizes={"48p.mp4": 100})
    assert await _listed(infra, f"outputs/{job}/") == 100

    async with session_scope(infra.sessions) as session:  # (registering would resolve DNS)
        session.add(
            GalleryWebhook(
                user_id=users.owner_id,
                url="https://hooks.example.com/vf",
                events=["video.ready"],
                secret="s" * 32,
            )
        )
    hooks = (await client.get("/api/gallery/webhooks", headers=users.owner)).json()["items"]
    assert len(hooks) == 1
    r = await client.delete("/api/gallery/me/videos", headers=users.owner)
    assert r.status_code == 200
    assert r.json() == {"deleted": 2}
    # Their webhooks are gone with them.
    assert (await client.get("/api/gallery/webhooks", headers=users.owner)).json()["items"] == []
    for video in mine:
        assert await infra.storage.head(video["s3_key"]) is None
    assert await _listed(infra, f"outputs/{job}/", f"originals/{users.owner_id}/") == 0
    assert await infra.storage.head(theirs["s3_key"]) is not None
    assert (await _usage(client, users.owner))["used_bytes"] == 0
    assert (await client.delete("/api/gallery/me/videos", headers=users.owner)).json() == {
        "deleted": 0
    }
    assert (await client.delete("/api/gallery/me/videos")).status_code == 401


async def test_deleting_all_of_a_user_also_takes_their_ratings_and_comments_elsewhere(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    theirs = await _upload(client, users.other, tiny_mp4)
    public = await client.put(
        f"/api/gallery/videos/{theirs['id']}", json={"visibility": "public"}, headers=users.other
    )
    assert public.status_code == 200, public.text
    base = f"/api/gallery/videos/{theirs['id']}"
    liked = await client.put(f"{base}/rating", json={"rating": "like"}, headers=users.owner)
    assert liked.status_code == 200, liked.text
    thread = await client.post(f"{base}/comments", json={"text": "Nice one"}, headers=users.owner)
    assert thread.status_code == 201, thread.text
    reply = await client.post(
        f"{base}/comments",
        json={"text": "Thanks!", "parent_id": thread.json()["id"]},
        headers=users.other,
    )
    assert reply.status_code == 201, reply.text
    before = await _video(client, theirs["id"], users.other)
    assert (before["likes"], before["comments_count"]) == (1, 2)

    assert (await client.delete("/api/gallery/me/videos", headers=users.owner)).status_code == 200
    after = await _video(client, theirs["id"], users.other)
    assert after["likes"] == 0
    assert after["comments_count"] == 1  # the reply stays, under a placeholder
    listed = (await client.get(f"{base}/comments", headers=users.other)).json()
    texts = [c["text"] for c in listed["items"]]
    assert "Nice one" not in texts


async def test_deleting_all_of_a_user_takes_their_playlists_and_nobody_elses(
    client: httpx.AsyncClient, users: Users, tiny_mp4: bytes
) -> None:
    """An account's deletion leaves none of its playlists (public, unlisted or Watch
    later) to be listed or opened; other users' playlists, even of its videos, stay."""
    theirs = await _upload(client, users.other, tiny_mp4)
    mine = await _upload(client, users.owner, tiny_mp4)
    for video, headers in ((theirs, users.other), (mine, users.owner)):
        public = await client.put(
            f"/api/gallery/videos/{video['id']}", json={"visibility": "public"}, headers=headers
        )
        assert public.status_code == 200, public.text
    playlists = "/api/gallery/playlists"
    made = []
    for title, visibility in (("Shown", "public"), ("By link", "unlisted")):
        r = await client.post(
            playlists, json={"title": title, "visibility": visibility}, headers=users.owner
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    later = await client.post(
        f"{playlists}/watch-later/videos", json={"video_id": theirs["id"]}, headers=users.owner
    )
    assert later.status_code == 201, later.text
    kept = await client.post(
        playlists, json={"title": "Kept", "visibility": "public"}, headers=users.other
    )
    assert kept.status_code == 201, kept.text
    kept_videos = f"{playlists}/{kept.json()['id']}/videos"
    added = await client.post(kept_videos, json={"video_id": mine["id"]}, headers=users.other)
    assert added.status_code == 201, added.text
    owned = (await client.get(playlists, headers=users.owner)).json()["items"]
    assert len(owned) == 3  # Watch later, Shown, By link

    assert (await client.delete("/api/gallery/me/videos", headers=users.owner)).status_code == 200
    for playlist_id in made:
        r = await client.get(f"{playlists}/{playlist_id}", headers=users.admin)
        assert r.status_code == 404, r.text
    r = await client.get(playlists, params={"owner": users.owner_id}, headers=users.admin)
    assert r.json()["items"] == []
    # Theirs stays; the deleted account's video in it is gone with the video.
    r = await client.get(kept_videos, headers=users.other)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


async def test_a_failed_attempt_and_its_retry_are_counted_as_stored(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    video = await _upload(client, users.owner, tiny_mp4)
    original_dir = video["s3_key"].rsplit("/", 1)[0] + "/"
    job = uuid.uuid4()
    # The first attempt stored part of its outputs, then failed.
    await infra.storage.put_bytes(
        f"outputs/{job}/48p.mp4", b"p" * 2000, content_type="application/octet-stream"
    )
    failed = JobEvent(
        job_id=job,
        video_id=uuid.UUID(video["id"]),
        user_id=video["user_id"],
        seq=1,
        status=JobStatus.FAILED,
        at=utcnow(),
        error="disk full",
    )
    await infra.queues.events.send(failed.dumps())
    assert await consume_once(infra, wait_seconds=0.1) == 1
    seen = await _video(client, video["id"], users.owner)
    assert seen["status"] == "failed"
    assert seen["storage_bytes"] == len(tiny_mp4) + 2000  # what is there counts
    # The retry (same job, later seq) overwrites the same keys and adds the rest.
    await _process(infra, video, job, sizes={"48p.mp4": 1500, "hls/master.m3u8": 100}, seq=2)
    expected = await _listed(infra, original_dir, f"outputs/{job}/")
    assert expected == len(tiny_mp4) + 1600
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == expected


async def test_captions_count_while_they_exist(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    video = await _upload(client, users.owner, tiny_mp4)
    original_dir = video["s3_key"].rsplit("/", 1)[0] + "/"
    body = b"WEBVTT\n\n00:00:00.000 --> 00:00:00.400\nHello there\n"
    put = await client.put(
        f"/api/gallery/videos/{video['id']}/captions/en",
        content=body,
        headers={**users.owner, "Content-Type": "text/vtt"},
    )
    assert put.status_code in (200, 201), put.text
    expected = await _listed(infra, original_dir, f"captions/{video['id']}/")
    assert expected > len(tiny_mp4)
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == expected
    gone = await client.delete(
        f"/api/gallery/videos/{video['id']}/captions/en", headers=users.owner
    )
    assert gone.status_code == 204
    assert (await _video(client, video["id"], users.owner))["storage_bytes"] == len(tiny_mp4)


async def test_imports_need_some_room(
    client: httpx.AsyncClient, infra: Infra, users: Users, tiny_mp4: bytes
) -> None:
    await _upload(client, users.owner, tiny_mp4)
    full = await client.put(
        f"/api/gallery/admin/users/{users.owner_id}/quota",
        json={"quota_bytes": len(tiny_mp4)},
        headers=users.admin,
    )
    assert full.status_code == 200
    body = {"title": "x", "source_url": "https://media.example.com/x.mp4"}
    refused = await client.post("/api/gallery/videos", json=body, headers=users.owner)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert "full" in refused.json()["error"]["message"]
    other = await client.post("/api/gallery/videos", json=body, headers=users.other)
    assert other.status_code == 201, other.text

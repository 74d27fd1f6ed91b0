"""Reports and moderation: reporting videos and comments, the admins' queue grouped by
target, dismissing, hiding videos, deleting comments, blocking accounts, the log of
it all; and a deleted video taking its comments, ratings and reports with it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from videoforge.gallery.comments.models import GalleryComment
from videoforge.gallery.models import Visibility
from videoforge.gallery.moderation.models import GalleryModerationAction, GalleryReport
from videoforge.gallery.ratings.models import GalleryRating
from videoforge.infra.runtime import Infra

from .conftest import SeedVideo, Users, store_upload

QUEUE = "/api/gallery/moderation/reports"


async def _comment(
    client: httpx.AsyncClient, video_id: uuid.UUID, headers: dict[str, str], text: str
) -> dict[str, Any]:
    r = await client.post(
        f"/api/gallery/videos/{video_id}/comments", json={"text": text}, headers=headers
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _report(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"{path}/reports", json={"reason": "spam", **body}, headers=headers)


async def test_reports_reach_the_grouped_queue(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="Reported")
    comment = await _comment(client, video.id, users.other, "rude words")
    vpath = f"/api/gallery/videos/{video.id}"
    cpath = f"/api/gallery/comments/{comment['id']}"

    r = await _report(client, vpath, users.other, reason="copyright", note="my song")
    assert r.status_code == 201, r.text
    assert r.json()["target_type"] == "video"
    assert r.json()["status"] == "open"
    again = await _report(client, vpath, users.other)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_reported"
    for n in range(3):
        r = await _report(client, cpath, users.headers(f"reporter-{n}"), reason="harassment")
        assert r.status_code == 201, r.text
    assert (await _report(client, cpath, users.owner, reason="hate")).status_code == 201

    queue = await client.get(QUEUE, headers=users.admin)
    assert queue.status_code == 200, queue.text
    groups = queue.json()["items"]
    assert [(g["target_type"], g["count"]) for g in groups] == [("comment", 4), ("video", 1)]
    assert groups[0]["reasons"] == {"harassment": 3, "hate": 1}
    assert groups[0]["comment"]["text"] == "rude words"
    assert groups[0]["video"]["title"] == "Reported"
    assert groups[1]["notes"] == ["my song"]
    assert groups[1]["video"]["id"] == str(video.id)

    for headers, status in ((users.other, 403), (users.owner, 403), ({}, 401)):
        r = await client.get(QUEUE, headers=headers)
        assert r.status_code == status, r.text
    r = await client.get(QUEUE, headers=users.admin, params={"per_page": 1})
    assert len(r.json()["items"]) == 1
    assert r.json()["has_more"] is True


async def test_report_input_and_access(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    private = await seed_video(users.owner_id, visibility=Visibility.PRIVATE)
    vpath = f"/api/gallery/videos/{video.id}"
    for body in (
        {"reason": "boring"},
        {},
        {"reason": "spam", "note": "n" * 1001},
        {"reason": "spam", "extra": True},
    ):
        r = await client.post(f"{vpath}/reports", json=body, headers=users.other)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "validation_error", body
    assert (await _report(client, vpath, {})).status_code == 401
    r = await _report(client, f"/api/gallery/videos/{private.id}", users.other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "video_not_found"
    r = await _report(client, f"/api/gallery/comments/{uuid.uuid4()}", users.other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "comment_not_found"
    r = await _report(client, vpath, users.other, note="  with a note  ")
    assert r.status_code == 201
    assert r.json()["note"] == "with a note"


async def test_dismiss_and_hide(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, title="Hide me")
    other_video = await seed_video(users.owner_id, title="Keep me")
    comment = await _comment(client, video.id, users.other, "a comment")
    vpath = f"/api/gallery/videos/{video.id}"
    await _report(client, vpath, users.other)
    await _report(client, f"/api/gallery/videos/{other_video.id}", users.other)

    dismiss = f"/api/gallery/moderation/reports/video/{other_video.id}/dismiss"
    assert (await client.post(dismiss, headers=users.other)).status_code == 403
    r = await client.post(dismiss, json={"note": "fine"}, headers=users.admin)
    assert r.status_code == 200
    assert r.json() == {"action": "dismiss", "resolved_reports": 1}
    r = await client.post(dismiss, headers=users.admin)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_open_reports"
    r = await client.post(
        f"/api/gallery/moderation/reports/playlist/{video.id}/dismiss", headers=users.admin
    )
    assert r.status_code == 422

    hide = f"/api/gallery/moderation/videos/{video.id}/hide"
    assert (await client.post(hide, headers=users.owner)).status_code == 403
    r = await client.post(hide, headers=users.admin)
    assert r.status_code == 200
    assert r.json()["resolved_reports"] == 1
    assert (await client.get(QUEUE, headers=users.admin)).json()["items"] == []

    # Gone for everyone but the owner and admins: detail, stream, comments, listing.
    for headers in ({}, users.other):
        for path in (
            vpath,
            f"/api/gallery/stream/{video.id}",
            f"{vpath}/comments",
            f"/api/gallery/comments/{comment['id']}",
        ):
            r = await client.get(path, headers=headers)
            assert r.status_code == 404, (path, r.text)
        r = await client.post(f"{vpath}/comments", json={"text": "x"}, headers=users.other)
        assert r.status_code == 404
        titles = [
            v["title"]
            for v in (await client.get("/api/gallery/videos", headers=headers)).json()["items"]
        ]
        assert titles == ["Keep me"]
    for headers in (users.owner, users.admin):
        r = await client.get(vpath, headers=headers)
        assert r.status_code == 200
        assert r.json()["hidden"] is True
        titles = [
            v["title"]
            for v in (await client.get("/api/gallery/videos", headers=headers)).json()["items"]
        ]
        assert "Hide me" in titles

    r = await client.post(f"/api/gallery/moderation/videos/{video.id}/unhide", headers=users.admin)
    assert r.status_code == 200
    assert (await client.get(vpath)).status_code == 200
    r = await client.post(
        f"/api/gallery/moderation/videos/{uuid.uuid4()}/hide", headers=users.admin
    )
    assert r.status_code == 404

    log = (await client.get("/api/gallery/moderation/actions", headers=users.admin)).json()
    assert [e["action"] for e in log["items"]] == ["unhide_video", "hide_video", "dismiss"]
    assert {e["actor_id"] for e in log["items"]} == {users.admin_id}
    assert log["items"][2]["note"] == "fine"
    assert (
        await client.get("/api/gallery/moderation/actions", headers=users.owner)
    ).status_code == 403


async def test_moderator_deletes_a_reported_comment(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    top = await _comment(client, video.id, users.other, "bad")
    r = await client.post(
        f"/api/gallery/videos/{video.id}/comments",
        json={"text": "reply", "parent_id": top["id"]},
        headers=users.owner,
    )
    assert r.status_code == 201
    await _report(client, f"/api/gallery/comments/{top['id']}", users.owner)
    path = f"/api/gallery/moderation/comments/{top['id']}/delete"
    assert (await client.post(path, headers=users.owner)).status_code == 403
    r = await client.post(path, headers=users.admin)
    assert r.status_code == 200
    assert r.json() == {"action": "delete_comment", "resolved_reports": 1}
    items = (await client.get(f"/api/gallery/videos/{video.id}/comments")).json()["items"]
    assert [(c["deleted"], c["text"]) for c in items] == [(True, None)]
    assert (await client.post(path, headers=users.admin)).status_code == 404


async def test_blocked_accounts(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    written = await _comment(client, video.id, users.other, "before the block")
    block = "/api/gallery/moderation/blocks/comment"
    params = {"user_id": users.other_id}
    assert (await client.put(block, params=params, headers=users.owner)).status_code == 403
    r = await client.put(block, params=params, json={"reason": "spam"}, headers=users.admin)
    assert r.status_code == 201
    assert r.json()["created_by"] == users.admin_id
    assert (await client.put(block, params=params, headers=users.admin)).status_code == 200

    r = await client.post(
        f"/api/gallery/videos/{video.id}/comments", json={"text": "x"}, headers=users.other
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "commenting_blocked"
    r = await client.patch(
        f"/api/gallery/comments/{written['id']}", json={"text": "edit"}, headers=users.other
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "commenting_blocked"
    # Only commenting: uploading still works, and others still comment.
    upload = {"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    assert (
        await client.post("/api/upload/url", json=upload, headers=users.other)
    ).status_code == 201
    await _comment(client, video.id, users.owner, "still open")

    r = await client.put(
        "/api/gallery/moderation/blocks/upload", params=params, headers=users.admin
    )
    assert r.status_code == 201
    r = await client.post("/api/upload/url", json=upload, headers=users.other)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "uploading_blocked"
    r = await client.post(
        "/api/gallery/videos",
        json={"title": "t", "source_url": "https://example.com/v.mp4"},
        headers=users.other,
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "uploading_blocked"

    blocks = (await client.get("/api/gallery/moderation/blocks", headers=users.admin)).json()
    assert {(b["user_id"], b["scope"]) for b in blocks["items"]} == {
        (users.other_id, "comment"),
        (users.other_id, "upload"),
    }
    assert (await client.delete(block, params=params, headers=users.admin)).status_code == 204
    assert (await client.delete(block, params=params, headers=users.admin)).status_code == 404
    await _comment(client, video.id, users.other, "after the block")
    r = await client.put(
        "/api/gallery/moderation/blocks/everything", params=params, headers=users.admin
    )
    assert r.status_code == 422
    r = await client.put(block, headers=users.admin)  # no user_id
    assert r.status_code == 422
    for bad in ("a\x00b", "\n", "x" * 256):
        r = await client.put(block, params={"user_id": bad}, headers=users.admin)
        assert r.status_code == 422, bad

    log = (
        await client.get(
            "/api/gallery/moderation/actions", headers=users.admin, params={"limit": 2}
        )
    ).json()
    assert [e["action"] for e in log["items"]] == ["unblock_user", "block_user"]
    rest = (
        await client.get(
            "/api/gallery/moderation/actions",
            headers=users.admin,
            params={"cursor": log["next_cursor"]},
        )
    ).json()
    assert [e["action"] for e in rest["items"]] == ["block_user"]
    for bad in ("abc", "-1", "9" * 40):
        r = await client.get(
            "/api/gallery/moderation/actions", headers=users.admin, params={"cursor": bad}
        )
        assert r.status_code in (400, 422)
        assert r.json()["error"]["code"] in (
            "invalid_cursor",
            "validation_error",
        )


async def test_an_upload_begun_before_an_upload_block_is_not_confirmed(
    client: httpx.AsyncClient, users: Users, tiny_mp4: bytes
) -> None:
    """The block holds for an upload URL issued before it: confirming is 403
    `uploading_blocked` and makes no video (the object is left to the upload sweep)."""
    key = await store_upload(client, users.other, tiny_mp4)
    r = await client.put(
        "/api/gallery/moderation/blocks/upload",
        params={"user_id": users.other_id},
        headers=users.admin,
    )
    assert r.status_code == 201, r.text
    confirm = {"key": key, "title": "Sneaked in"}
    r = await client.post("/api/upload/confirm", json=confirm, headers=users.other)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "uploading_blocked"
    mine = await client.get(
        "/api/gallery/videos", params={"owner": users.other_id}, headers=users.other
    )
    assert mine.json()["items"] == []

    await client.delete(
        "/api/gallery/moderation/blocks/upload",
        params={"user_id": users.other_id},
        headers=users.admin,
    )
    r = await client.post("/api/upload/confirm", json=confirm, headers=users.other)
    assert r.status_code == 201, r.text


async def _rows(infra: Infra, model: Any, video_id: uuid.UUID) -> int:
    async with infra.sessions() as session:
        stmt = select(func.count()).select_from(model).where(model.video_id == video_id)
        return int((await session.execute(stmt)).scalar_one())


async def test_deleting_a_video_removes_what_hangs_off_it(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Infra
) -> None:
    video = await seed_video(users.owner_id)
    kept = await seed_video(users.owner_id)
    for target in (video, kept):
        top = await _comment(client, target.id, users.other, "top")
        r = await client.post(
            f"/api/gallery/videos/{target.id}/comments",
            json={"text": "reply", "parent_id": top["id"]},
            headers=users.owner,
        )
        assert r.status_code == 201
        await client.put(
            f"/api/gallery/videos/{target.id}/rating", json={"rating": "like"}, headers=users.other
        )
        await _report(client, f"/api/gallery/videos/{target.id}", users.other)
        await _report(client, f"/api/gallery/comments/{top['id']}", users.owner)
    await client.post(f"/api/gallery/moderation/videos/{video.id}/hide", headers=users.admin)

    r = await client.delete(f"/api/gallery/videos/{video.id}", headers=users.owner)
    assert r.status_code == 204
    for model in (GalleryComment, GalleryRating, GalleryReport):
        assert await _rows(infra, model, video.id) == 0, model
        assert await _rows(infra, model, kept.id) > 0, model
    # The moderation log outlives the video it names.
    assert await _rows(infra, GalleryModerationAction, video.id) == 1

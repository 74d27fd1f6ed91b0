"""The authorisation matrix: anonymous / owner / other user / admin x public / unlisted /
private x every endpoint, on SQLite and PostgreSQL. Each cell is an expected status.
A public video not published yet (a draft, one waiting for its processing, one
scheduled for later), or hidden by a moderator, answers exactly as a private one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from videoforge.gallery.models import Visibility
from videoforge.infra.db import utcnow

from .conftest import SeedVideo, Users

CALLERS = ("anonymous", "owner", "other", "admin")
PUB, UNL, PRIV = Visibility.PUBLIC, Visibility.UNLISTED, Visibility.PRIVATE

# endpoint -> visibility -> caller -> expected status
MATRIX: dict[str, dict[Visibility, dict[str, int]]] = {
    "get": {
        PUB: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        UNL: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "stream": {
        PUB: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        UNL: {"anonymous": 200, "owner": 200, "other": 200, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "views": {
        PUB: {"anonymous": 202, "owner": 202, "other": 202, "admin": 202},
        UNL: {"anonymous": 202, "owner": 202, "other": 202, "admin": 202},
        PRIV: {"anonymous": 404, "owner": 202, "other": 404, "admin": 202},
    },
    "analytics": {
        PUB: {"anonymous": 401, "owner": 200, "other": 403, "admin": 200},
        UNL: {"anonymous": 401, "owner": 200, "other": 403, "admin": 200},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200},
    },
    "update": {
        PUB: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        UNL: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 403},
    },
    "delete": {
        PUB: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        UNL: {"anonymous": 401, "owner": 204, "other": 403, "admin": 204},
        PRIV: {"anonymous": 404, "owner": 204, "other": 404, "admin": 204},
    },
    # Listed (1) or not (0) in the listing, and in search results.
    "listed": {
        PUB: {"anonymous": 1, "owner": 1, "other": 1, "admin": 1},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
    },
    # The stream answer includes the original (download) only for the owner.
    "original": {
        PUB: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 0},
    },
    # The original's storage key is shown to the owner and admins only.
    "s3_key": {
        PUB: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        UNL: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
        PRIV: {"anonymous": 0, "owner": 1, "other": 0, "admin": 1},
    },
}


def _headers(users: Users, caller: str) -> dict[str, str]:
    return {
        "anonymous": {},
        "owner": users.owner,
        "other": users.other,
        "admin": users.admin,
    }[caller]


def _ready_fields(job: uuid.UUID) -> dict[str, object]:
    return {
        "s3_key": f"originals/o/{job.hex}/source",
        "original_filename": "holiday.mp4",
        "content_type": "video/mp4",
        "hls_master_key": f"outputs/{job}/hls/master.m3u8",
        "thumbnail_key": f"outputs/{job}/thumbnail.jpg",
        "preview_key": f"outputs/{job}/preview.gif",
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


@pytest.mark.parametrize("visibility", [PUB, UNL, PRIV], ids=lambda v: v.value)
@pytest.mark.parametrize("caller", CALLERS)
async def test_matrix(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    visibility: Visibility,
    caller: str,
) -> None:
    video = await seed_video(
        users.owner_id,
        title="Matrix zebra",
        visibility=visibility,
        **_ready_fields(uuid.uuid4()),
    )
    await _check(client, users, video.id, caller, lambda endpoint: MATRIX[endpoint][visibility])


#: Publishing columns of public videos that are not public yet.
UNPUBLISHED: dict[str, dict[str, Any]] = {
    "draft": {"draft": True},
    "when_ready": {"draft": True, "publish_when_ready": True},
    "scheduled": {"publish_at": utcnow() + timedelta(days=1)},
}


@pytest.mark.parametrize("state", sorted(UNPUBLISHED))
@pytest.mark.parametrize("caller", CALLERS)
async def test_unpublished_public_videos_are_private_until_published(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, state: str, caller: str
) -> None:
    video = await seed_video(
        users.owner_id,
        title="Matrix zebra",
        visibility=PUB,
        **_ready_fields(uuid.uuid4()),
        **UNPUBLISHED[state],
    )
    await _check(client, users, video.id, caller, lambda endpoint: MATRIX[endpoint][PRIV])


@pytest.mark.parametrize("caller", CALLERS)
async def test_hidden_public_videos_answer_as_private_ones(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, caller: str
) -> None:
    """A public video a moderator hid is there for its owner and admins only."""
    video = await seed_video(
        users.owner_id,
        title="Matrix zebra",
        visibility=PUB,
        hidden=True,
        **_ready_fields(uuid.uuid4()),
    )
    await _check(client, users, video.id, caller, lambda endpoint: MATRIX[endpoint][PRIV])


async def _check(
    client: httpx.AsyncClient,
    users: Users,
    video_id: uuid.UUID,
    caller: str,
    row: Any,
) -> None:
    """Every endpoint for ``caller``; ``row(endpoint)`` is the matrix row expected."""
    headers = _headers(users, caller)
    url = f"/api/gallery/videos/{video_id}"

    def expect(endpoint: str) -> int:
        return int(row(endpoint)[caller])

    r = await client.get(url, headers=headers)
    assert r.status_code == expect("get"), r.text
    if r.status_code == 200:
        assert (r.json()["s3_key"] is not None) == bool(expect("s3_key"))
    else:
        assert r.json()["error"]["code"] == "video_not_found"

    r = await client.get(f"/api/gallery/stream/{video_id}", headers=headers)
    assert r.status_code == expect("stream"), r.text
    if r.status_code == 200:
        assert (r.json()["original"] is not None) == bool(expect("original"))

    r = await client.post(f"{url}/views", headers=headers)
    assert r.status_code == expect("views"), r.text

    r = await client.get(f"{url}/analytics", headers=headers)
    assert r.status_code == expect("analytics"), r.text

    listed = await client.get("/api/gallery/videos", headers=headers)
    assert listed.status_code == 200
    ids = [item["id"] for item in listed.json()["items"]]
    assert (str(video_id) in ids) == bool(expect("listed"))
    found = await client.get("/api/gallery/videos", params={"q": "zebra"}, headers=headers)
    ids = [item["id"] for item in found.json()["items"]]
    assert (str(video_id) in ids) == bool(expect("listed"))

    r = await client.put(url, json={"description": "changed"}, headers=headers)
    assert r.status_code == expect("update"), r.text

    r = await client.delete(url, headers=headers)
    assert r.status_code == expect("delete"), r.text
    after = await client.get(url, headers=users.owner)
    assert after.status_code == (404 if expect("delete") == 204 else 200)


async def test_missing_video_is_404_everywhere(client: httpx.AsyncClient, users: Users) -> None:
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/api/gallery/videos/{missing}"),
        ("GET", f"/api/gallery/stream/{missing}"),
        ("POST", f"/api/gallery/videos/{missing}/views"),
        ("GET", f"/api/gallery/videos/{missing}/analytics"),
        ("PUT", f"/api/gallery/videos/{missing}"),
        ("DELETE", f"/api/gallery/videos/{missing}"),
    ]:
        kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "PUT" else {}
        r = await client.request(method, path, headers=users.admin, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "video_not_found"


async def test_bad_token_is_401_not_anonymous(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    r = await client.get(
        f"/api/gallery/videos/{video.id}", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert r.status_code == 401
    assert "error" in r.json()


async def test_upload_endpoints_require_login(client: httpx.AsyncClient) -> None:
    for path, body in [
        ("/api/upload/url", {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}),
        ("/api/upload/confirm", {"key": "originals/x/y/source"}),
        (
            "/api/upload/multipart/complete",
            {"key": "k", "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]},
        ),
        ("/api/upload/multipart/abort", {"key": "k", "upload_id": "u"}),
        ("/api/upload/multipart/parts", {"key": "k", "upload_id": "u", "part_numbers": [1]}),
        ("/api/gallery/videos", {"title": "t", "source_url": "https://example.com/v.mp4"}),
    ]:
        r = await client.post(path, json=body)
        assert r.status_code == 401, (path, r.text)


# -- comments, ratings, reports and moderation ----------------------------------------
# What a private video hides, its comments hide too (404, as the video itself); writing
# needs a login (401) — checked after visibility, so a private video stays a 404.
_SEE = {"anonymous": 200, "owner": 200, "other": 200, "admin": 200}
_SEE_PRIVATE = {"anonymous": 404, "owner": 200, "other": 404, "admin": 200}


def _writes(ok: int, *, anonymous: int = 401) -> dict[Visibility, dict[str, int]]:
    """Anyone signed in who can see the video."""
    return {
        PUB: {"anonymous": anonymous, "owner": ok, "other": ok, "admin": ok},
        UNL: {"anonymous": anonymous, "owner": ok, "other": ok, "admin": ok},
        PRIV: {
            "anonymous": 404 if anonymous == 401 else anonymous,
            "owner": ok,
            "other": 404,
            "admin": ok,
        },
    }


def _owner_or_admin(ok: int) -> dict[Visibility, dict[str, int]]:
    return {
        PUB: {"anonymous": 401, "owner": ok, "other": 403, "admin": ok},
        UNL: {"anonymous": 401, "owner": ok, "other": 403, "admin": ok},
        PRIV: {"anonymous": 404, "owner": ok, "other": 404, "admin": ok},
    }


_ALL = (PUB, UNL, PRIV)
_ADMIN_ONLY = {"anonymous": 401, "owner": 403, "other": 403, "admin": 200}

SOCIAL_MATRIX: dict[str, dict[Visibility, dict[str, int]]] = {
    "list_comments": {PUB: _SEE, UNL: _SEE, PRIV: _SEE_PRIVATE},
    "get_comment": {PUB: _SEE, UNL: _SEE, PRIV: _SEE_PRIVATE},
    "replies": {PUB: _SEE, UNL: _SEE, PRIV: _SEE_PRIVATE},
    "post_comment": {
        # The login is checked first here (before the rate limit).
        PUB: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        UNL: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        PRIV: {"anonymous": 401, "owner": 201, "other": 404, "admin": 201},
    },
    # The comment is the owner's: only its author edits it.
    "edit_comment": {
        PUB: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        UNL: {"anonymous": 401, "owner": 200, "other": 403, "admin": 403},
        PRIV: {"anonymous": 404, "owner": 200, "other": 404, "admin": 403},
    },
    "held_queue": _owner_or_admin(200),
    # A held comment does not exist for anyone but its author and the video's owner.
    "approve": {v: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200} for v in _ALL},
    "reject": {v: {"anonymous": 404, "owner": 200, "other": 404, "admin": 200} for v in _ALL},
    "pin": _owner_or_admin(200),
    "unpin": _owner_or_admin(200),
    # A stranger's comment: its author would be allowed, others not.
    "delete_comment": _owner_or_admin(204),
    "rate": {
        PUB: {"anonymous": 401, "owner": 200, "other": 200, "admin": 200},
        UNL: {"anonymous": 401, "owner": 200, "other": 200, "admin": 200},
        PRIV: {"anonymous": 401, "owner": 200, "other": 404, "admin": 200},
    },
    "report_video": {
        PUB: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        UNL: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        PRIV: {"anonymous": 401, "owner": 201, "other": 404, "admin": 201},
    },
    "report_comment": {
        PUB: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        UNL: {"anonymous": 401, "owner": 201, "other": 201, "admin": 201},
        PRIV: {"anonymous": 401, "owner": 201, "other": 404, "admin": 201},
    },
    "moderation_queue": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "moderation_log": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "moderation_blocks": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "dismiss": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "moderation_delete_comment": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "block": {
        v: {"anonymous": 401, "owner": 403, "other": 403, "admin": 201} for v in (PUB, UNL, PRIV)
    },
    "hide": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
    "unhide": {PUB: _ADMIN_ONLY, UNL: _ADMIN_ONLY, PRIV: _ADMIN_ONLY},
}


async def _seed_comment(infra: Any, video_id: uuid.UUID, author: str, **fields: Any) -> uuid.UUID:
    from videoforge.gallery.comments.models import CommentStatus, GalleryComment
    from videoforge.infra.db import session_scope

    comment = GalleryComment(
        id=uuid.uuid4(),
        video_id=video_id,
        author_id=author,
        author_name=author,
        text=fields.pop("text", "seeded"),
        status=fields.pop("status", CommentStatus.APPROVED),
        deleted=False,
        pinned=False,
        replies_count=0,
        **fields,
    )
    async with session_scope(infra.sessions) as session:
        session.add(comment)
    return comment.id


#: The social matrix's columns: the three visibilities, and a public video a moderator
#: hid, which answers every endpoint exactly as a private one.
SOCIAL_COLUMNS: dict[str, tuple[Visibility, dict[str, Any], Visibility]] = {
    "public": (PUB, {}, PUB),
    "unlisted": (UNL, {}, UNL),
    "private": (PRIV, {}, PRIV),
    "hidden": (PUB, {"hidden": True}, PRIV),
}


@pytest.mark.parametrize("column", sorted(SOCIAL_COLUMNS))
@pytest.mark.parametrize("caller", CALLERS)
async def test_social_matrix(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    infra: Any,
    column: str,
    caller: str,
) -> None:
    from videoforge.gallery.comments.models import CommentStatus

    headers = _headers(users, caller)
    seeded, fields, visibility = SOCIAL_COLUMNS[column]
    video = await seed_video(users.owner_id, visibility=seeded, **fields)
    owners = await _seed_comment(infra, video.id, users.owner_id, text="by the owner")
    strangers = await _seed_comment(infra, video.id, "stranger")
    reported = await _seed_comment(infra, video.id, "stranger")
    held = await _seed_comment(infra, video.id, "stranger", status=CommentStatus.HELD)
    rejected = await _seed_comment(infra, video.id, "stranger", status=CommentStatus.HELD)
    await _seed_comment(infra, video.id, "stranger", parent_id=owners)
    # An open report for the dismiss cell (filed by a fifth user, who can see it).
    async with infra.sessions() as session:
        from videoforge.gallery.moderation.models import (
            GalleryReport,
            ReportReason,
            ReportStatus,
            TargetType,
        )

        session.add(
            GalleryReport(
                id=uuid.uuid4(),
                target_type=TargetType.VIDEO,
                target_id=video.id,
                video_id=video.id,
                reporter_id="reporter",
                reason=ReportReason.SPAM,
                status=ReportStatus.OPEN,
            )
        )
        await session.commit()
    v = f"/api/gallery/videos/{video.id}"
    c = "/api/gallery/comments"
    m = "/api/gallery/moderation"

    def expect(endpoint: str) -> int:
        return SOCIAL_MATRIX[endpoint][visibility][caller]

    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("list_comments", "GET", f"{v}/comments", {}),
        ("get_comment", "GET", f"{c}/{owners}", {}),
        ("replies", "GET", f"{c}/{owners}/replies", {}),
        ("post_comment", "POST", f"{v}/comments", {"json": {"text": "hi"}}),
        ("edit_comment", "PATCH", f"{c}/{owners}", {"json": {"text": "edited"}}),
        ("held_queue", "GET", f"{v}/comments", {"params": {"status": "held"}}),
        ("approve", "POST", f"{c}/{held}/approve", {}),
        ("reject", "POST", f"{c}/{rejected}/reject", {}),
        ("pin", "POST", f"{c}/{owners}/pin", {}),
        ("unpin", "POST", f"{c}/{owners}/unpin", {}),
        ("rate", "PUT", f"{v}/rating", {"json": {"rating": "like"}}),
        ("report_video", "POST", f"{v}/reports", {"json": {"reason": "spam"}}),
        ("report_comment", "POST", f"{c}/{owners}/reports", {"json": {"reason": "hate"}}),
        ("moderation_queue", "GET", f"{m}/reports", {}),
        ("moderation_log", "GET", f"{m}/actions", {}),
        ("moderation_blocks", "GET", f"{m}/blocks", {}),
        ("dismiss", "POST", f"{m}/reports/video/{video.id}/dismiss", {}),
        ("moderation_delete_comment", "POST", f"{m}/comments/{reported}/delete", {}),
        ("block", "PUT", f"{m}/blocks/comment", {"params": {"user_id": "someone"}}),
        ("delete_comment", "DELETE", f"{c}/{strangers}", {}),
        ("hide", "POST", f"{m}/videos/{video.id}/hide", {}),
        ("unhide", "POST", f"{m}/videos/{video.id}/unhide", {}),
    ]
    for endpoint, method, path, kwargs in calls:
        r = await client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == expect(endpoint), (endpoint, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["code"], endpoint
        if r.status_code == 404:
            assert r.json()["error"]["code"] in ("video_not_found", "comment_not_found"), endpoint

    # Nobody learns another user's rating, and the held comment was seen only by those
    # who may see it.
    r = await client.get(v, headers=users.other)
    if r.status_code == 200:
        assert r.json()["my_rating"] == ("like" if caller == "other" else None)


async def test_missing_targets_are_404_for_social_endpoints(
    client: httpx.AsyncClient, users: Users
) -> None:
    missing = uuid.uuid4()
    for method, path, body in [
        ("GET", f"/api/gallery/videos/{missing}/comments", None),
        ("POST", f"/api/gallery/videos/{missing}/comments", {"text": "x"}),
        ("PUT", f"/api/gallery/videos/{missing}/rating", {"rating": "like"}),
        ("POST", f"/api/gallery/videos/{missing}/reports", {"reason": "spam"}),
        ("GET", f"/api/gallery/comments/{missing}", None),
        ("GET", f"/api/gallery/comments/{missing}/replies", None),
        ("PATCH", f"/api/gallery/comments/{missing}", {"text": "x"}),
        ("DELETE", f"/api/gallery/comments/{missing}", None),
        ("POST", f"/api/gallery/comments/{missing}/pin", None),
        ("POST", f"/api/gallery/comments/{missing}/approve", None),
        ("POST", f"/api/gallery/comments/{missing}/reports", {"reason": "spam"}),
        ("POST", f"/api/gallery/moderation/videos/{missing}/hide", None),
        ("POST", f"/api/gallery/moderation/comments/{missing}/delete", None),
    ]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        r = await client.request(method, path, headers=users.admin, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] in ("video_not_found", "comment_not_found")

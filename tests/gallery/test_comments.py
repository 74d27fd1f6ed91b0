"""Comments: threads one level deep, newest/oldest with keyset cursors, edits, deletes
(placeholders), pins, the per-video policy and its approval queue, blocked words, and
counts on the video; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from videoforge.gallery.models import Visibility

from .conftest import SeedVideo, Users


@pytest.fixture
def settings_extra() -> dict[str, Any]:
    return {"COMMENT_BLOCKED_WORDS": "spoon, bad phrase", "RATE_LIMITS": "comment=60:1000:1000"}


def _comments(video_id: uuid.UUID) -> str:
    return f"/api/gallery/videos/{video_id}/comments"


async def _post(
    client: httpx.AsyncClient,
    video_id: uuid.UUID,
    headers: dict[str, str],
    text: str,
    parent: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if parent is not None:
        body["parent_id"] = parent
    r = await client.post(_comments(video_id), json=body, headers=headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _texts(
    client: httpx.AsyncClient, video_id: uuid.UUID, headers: dict[str, str], **params: Any
) -> list[str | None]:
    r = await client.get(_comments(video_id), params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [c["text"] for c in r.json()["items"]]


async def _count(client: httpx.AsyncClient, video_id: uuid.UUID, headers: dict[str, str]) -> int:
    r = await client.get(f"/api/gallery/videos/{video_id}", headers=headers)
    assert r.status_code == 200, r.text
    count: int = r.json()["comments_count"]
    return count


async def test_threads_replies_and_counts(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    top = await _post(client, video.id, users.other, "First!")
    assert top["parent_id"] is None
    assert top["author_id"] == users.other_id
    assert top["status"] == "approved"
    assert top["by_owner"] is False
    reply = await _post(client, video.id, users.owner, "Thanks", parent=top["id"])
    assert reply["parent_id"] == top["id"]
    assert reply["by_owner"] is True
    # A reply to a reply joins the top-level comment's thread (one level, as YouTube).
    nested = await _post(client, video.id, users.other, "@owner you're welcome", reply["id"])
    assert nested["parent_id"] == top["id"]

    listed = (await client.get(_comments(video.id))).json()
    assert [c["id"] for c in listed["items"]] == [top["id"]]
    assert listed["items"][0]["replies_count"] == 2
    assert listed["comments_count"] == 3
    assert listed["comment_policy"] == "on"
    replies = (await client.get(f"/api/gallery/comments/{top['id']}/replies")).json()
    assert [c["id"] for c in replies["items"]] == [reply["id"], nested["id"]]  # oldest first
    assert await _count(client, video.id, {}) == 3
    page = (await client.get("/api/gallery/videos", params={"q": "video"})).json()
    assert [v["comments_count"] for v in page["items"] if v["id"] == str(video.id)] == [3]

    # A reply must belong to the video it is posted on.
    elsewhere = await seed_video(users.owner_id)
    r = await client.post(
        _comments(elsewhere.id), json={"text": "x", "parent_id": top["id"]}, headers=users.other
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "comment_not_found"
    r = await client.post(
        _comments(video.id), json={"text": "x", "parent_id": str(uuid.uuid4())}, headers=users.other
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "comment_not_found"


async def test_sorts_and_cursor_pages(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    for n in range(7):
        await _post(client, video.id, users.other, f"c{n}")

    async def walk(sort: str) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(_comments(video.id), params=params)).json()
            assert len(page["items"]) <= 3
            seen += [c["text"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert await walk("newest") == [f"c{n}" for n in reversed(range(7))]
    assert await walk("oldest") == [f"c{n}" for n in range(7)]

    first = (await client.get(_comments(video.id), params={"limit": 3})).json()
    r = await client.get(
        _comments(video.id), params={"sort": "oldest", "cursor": first["next_cursor"]}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"
    for bad in ("garbage", "e30", "eyJrIjoidG9wOm5ld2VzdCJ9", "x" * 600):
        r = await client.get(_comments(video.id), params={"cursor": bad})
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"]["code"] in ("invalid_cursor", "validation_error")
    # Well-formed but out of range once in UTC (year 0): refused, not a database error.
    raw = json.dumps({"k": "top:newest", "t": "0001-01-01T00:00:00+05:00", "i": "0" * 32})
    r = await client.get(
        _comments(video.id), params={"cursor": base64.urlsafe_b64encode(raw.encode()).decode()}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"
    r = await client.get(_comments(video.id), params={"limit": 0})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    r = await client.get(_comments(video.id), params={"sort": "best"})
    assert r.status_code == 422


async def test_text_is_validated_and_kept_as_text(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    for body in (
        {"text": ""},
        {"text": "   \n "},
        {"text": "x" * 2001},
        {"text": "ok", "extra": 1},
        {"text": 5},
        {},
        {"text": "ok", "parent_id": "not-a-uuid"},
    ):
        r = await client.post(_comments(video.id), json=body, headers=users.other)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = await client.post(_comments(video.id), content=b"{not json", headers=users.other)
    assert r.status_code == 422
    assert (await _post(client, video.id, users.other, "x" * 2000))["text"] == "x" * 2000
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)"> javascript:alert(3)'
    assert (await _post(client, video.id, users.other, hostile))["text"] == hostile
    # Control characters go; newlines stay.
    assert (await _post(client, video.id, users.other, "a\x00b\u202e\nc"))["text"] == "ab\nc"
    r = await client.post(_comments(video.id), json={"text": "anonymous"})
    assert r.status_code == 401


async def test_edit_own_comment_only(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    mine = await _post(client, video.id, users.other, "tpyo")
    url = f"/api/gallery/comments/{mine['id']}"
    r = await client.patch(url, json={"text": "typo"}, headers=users.other)
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "typo"
    assert r.json()["edited_at"] is not None
    for headers, status, code in (
        (users.owner, 403, "not_author"),
        (users.admin, 403, "not_author"),
        ({}, 401, "auth_required"),
    ):
        r = await client.patch(url, json={"text": "hijack"}, headers=headers)
        assert r.status_code == status
        assert r.json()["error"]["code"] == code
    r = await client.patch(url, json={"text": "y" * 2001}, headers=users.other)
    assert r.status_code == 422
    r = await client.patch(
        f"/api/gallery/comments/{uuid.uuid4()}", json={"text": "x"}, headers=users.other
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "comment_not_found"
    assert await _texts(client, video.id, {}) == ["typo"]


async def test_deletes_leave_placeholders_for_threads(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    top = await _post(client, video.id, users.other, "top")
    reply = await _post(client, video.id, users.admin, "reply", parent=top["id"])
    lone = await _post(client, video.id, users.other, "lone")
    assert await _count(client, video.id, {}) == 3

    r = await client.delete(f"/api/gallery/comments/{top['id']}", headers=users.other)
    assert r.status_code == 204
    items = (await client.get(_comments(video.id), params={"sort": "oldest"})).json()["items"]
    assert [(c["id"], c["text"], c["deleted"]) for c in items] == [
        (top["id"], None, True),
        (lone["id"], "lone", False),
    ]
    assert items[0]["replies_count"] == 1
    assert await _count(client, video.id, {}) == 2
    r = await client.delete(f"/api/gallery/comments/{top['id']}", headers=users.other)
    assert r.status_code == 404
    r = await client.patch(
        f"/api/gallery/comments/{top['id']}", json={"text": "back"}, headers=users.other
    )
    assert r.status_code == 404

    # Without replies, the row goes; the last reply of a placeholder takes it along.
    assert (
        await client.delete(f"/api/gallery/comments/{lone['id']}", headers=users.other)
    ).status_code == 204
    assert (
        await client.delete(f"/api/gallery/comments/{reply['id']}", headers=users.admin)
    ).status_code == 204
    assert await _texts(client, video.id, {}) == []
    assert await _count(client, video.id, {}) == 0
    assert (await client.get(f"/api/gallery/comments/{top['id']}")).status_code == 404


async def test_who_may_delete(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, infra: Any
) -> None:
    video = await seed_video(users.owner_id)
    third = users.headers("third-user")
    a = await _post(client, video.id, users.other, "a")
    b = await _post(client, video.id, users.other, "b")
    r = await client.delete(f"/api/gallery/comments/{a['id']}", headers=third)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_author"
    r = await client.delete(f"/api/gallery/comments/{a['id']}")
    assert r.status_code == 401
    # The video's owner deletes anything on their video; an admin anything at all.
    assert (
        await client.delete(f"/api/gallery/comments/{a['id']}", headers=users.owner)
    ).status_code == 204
    assert (
        await client.delete(f"/api/gallery/comments/{b['id']}", headers=users.admin)
    ).status_code == 204
    assert await _texts(client, video.id, {}) == []
    log = (await client.get("/api/gallery/moderation/actions", headers=users.admin)).json()
    # Only the admin's deletion is a moderation action.
    assert [(e["action"], e["target_id"]) for e in log["items"]] == [
        ("delete_comment", uuid.UUID(b["id"]).hex)
    ]


async def test_pinning(client: httpx.AsyncClient, users: Users, seed_video: SeedVideo) -> None:
    video = await seed_video(users.owner_id)
    old = await _post(client, video.id, users.other, "old")
    await _post(client, video.id, users.other, "mid")
    new = await _post(client, video.id, users.other, "new")
    reply = await _post(client, video.id, users.other, "reply", parent=old["id"])

    r = await client.post(f"/api/gallery/comments/{old['id']}/pin", headers=users.owner)
    assert r.status_code == 200
    assert r.json()["pinned"] is True
    assert await _texts(client, video.id, {}) == ["old", "new", "mid"]
    assert await _texts(client, video.id, {}, sort="oldest") == ["old", "mid", "new"]
    # Only on the first page: the cursor pages do not repeat it.
    first = (await client.get(_comments(video.id), params={"limit": 1})).json()
    assert [c["text"] for c in first["items"]] == ["old", "new"]
    rest = (await client.get(_comments(video.id), params={"cursor": first["next_cursor"]})).json()
    assert [c["text"] for c in rest["items"]] == ["mid"]

    # One pinned comment: pinning another replaces it.
    assert (
        await client.post(f"/api/gallery/comments/{new['id']}/pin", headers=users.owner)
    ).status_code == 200
    assert await _texts(client, video.id, {}) == ["new", "mid", "old"]
    for headers, status, code in (
        (users.other, 403, "not_owner"),
        ({}, 401, "auth_required"),
    ):
        r = await client.post(f"/api/gallery/comments/{old['id']}/pin", headers=headers)
        assert r.status_code == status
        assert r.json()["error"]["code"] == code
    r = await client.post(f"/api/gallery/comments/{reply['id']}/pin", headers=users.owner)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "cannot_pin_reply"
    r = await client.post(f"/api/gallery/comments/{new['id']}/unpin", headers=users.owner)
    assert r.status_code == 200
    assert r.json()["pinned"] is False
    assert await _texts(client, video.id, {}) == ["new", "mid", "old"]
    assert all(not c["pinned"] for c in (await client.get(_comments(video.id))).json()["items"])


async def test_policy_held_and_off(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    url = f"/api/gallery/videos/{video.id}"
    r = await client.put(url, json={"comment_policy": "held"}, headers=users.owner)
    assert r.status_code == 200
    assert r.json()["comment_policy"] == "held"
    for bad in (None, "maybe"):
        r = await client.put(url, json={"comment_policy": bad}, headers=users.owner)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "validation_error"
    r = await client.put(url, json={"comment_policy": "off"}, headers=users.other)
    assert r.status_code == 403

    held = await _post(client, video.id, users.other, "please approve")
    assert held["status"] == "held"
    assert held["hold_reason"] is None
    mine = await _post(client, video.id, users.owner, "owner's own")
    assert mine["status"] == "approved"
    third = users.headers("third-user")
    assert await _texts(client, video.id, {}) == ["owner's own"]
    assert await _texts(client, video.id, third) == ["owner's own"]
    assert await _texts(client, video.id, users.other) == ["owner's own", "please approve"]
    assert await _texts(client, video.id, users.owner) == ["owner's own", "please approve"]
    assert await _count(client, video.id, {}) == 1
    assert (await client.get(f"/api/gallery/comments/{held['id']}")).status_code == 404

    queue = await client.get(_comments(video.id), params={"status": "held"}, headers=users.owner)
    assert [c["id"] for c in queue.json()["items"]] == [held["id"]]
    assert queue.json()["items"][0]["hold_reason"] == "policy"
    for headers, status in ((users.other, 403), ({}, 401)):
        r = await client.get(_comments(video.id), params={"status": "held"}, headers=headers)
        assert r.status_code == status
    r = await client.post(f"/api/gallery/comments/{held['id']}/approve", headers=users.other)
    assert r.status_code == 403
    r = await client.post(f"/api/gallery/comments/{held['id']}/approve", headers=users.owner)
    assert r.status_code == 200
    assert r.json()["status"] == "approved"
    r = await client.post(f"/api/gallery/comments/{held['id']}/approve", headers=users.owner)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "comment_not_held"
    assert await _texts(client, video.id, third) == ["owner's own", "please approve"]
    assert await _count(client, video.id, {}) == 2

    spam = await _post(client, video.id, users.other, "buy things")
    r = await client.post(f"/api/gallery/comments/{spam['id']}/reject", headers=users.owner)
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert "buy things" not in await _texts(client, video.id, users.other)
    assert "buy things" not in await _texts(client, video.id, users.owner)
    queue = await client.get(_comments(video.id), params={"status": "held"}, headers=users.owner)
    assert queue.json()["items"] == []

    r = await client.put(url, json={"comment_policy": "off"}, headers=users.owner)
    assert r.status_code == 200
    r = await client.post(_comments(video.id), json={"text": "hi"}, headers=users.other)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "comments_disabled"
    listed = (await client.get(_comments(video.id))).json()
    assert listed["items"] == []
    assert listed["comment_policy"] == "off"
    r = await client.put(url, json={"comment_policy": "on"}, headers=users.owner)
    assert (await _post(client, video.id, users.other, "open again"))["status"] == "approved"


async def test_blocked_words_hold_comments(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id)
    held = await _post(client, video.id, users.other, "What a SPOON!")
    assert held["status"] == "held"
    assert (await _post(client, video.id, users.other, "a Bad  phrase"))["status"] == "approved"
    assert (await _post(client, video.id, users.other, "the bad phrase"))["status"] == "held"
    # Whole words only.
    assert (await _post(client, video.id, users.other, "a spoonful"))["status"] == "approved"
    queue = await client.get(_comments(video.id), params={"status": "held"}, headers=users.owner)
    reasons = {c["text"]: c["hold_reason"] for c in queue.json()["items"]}
    assert reasons == {"What a SPOON!": "blocked_words", "the bad phrase": "blocked_words"}

    ok = await _post(client, video.id, users.other, "fine")
    assert await _count(client, video.id, {}) == 3
    r = await client.patch(
        f"/api/gallery/comments/{ok['id']}", json={"text": "now spoon"}, headers=users.other
    )
    assert r.status_code == 200
    assert r.json()["status"] == "held"
    assert await _count(client, video.id, {}) == 2
    assert "now spoon" not in await _texts(client, video.id, {})


async def test_a_held_comment_takes_no_replies_until_approved(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    """Its author and the owner see a held comment, but a reply to it would be counted
    on the video while nobody else could see the thread: 409 until it is approved."""
    video = await seed_video(users.owner_id)
    held = await _post(client, video.id, users.other, "What a spoon")
    assert held["status"] == "held"
    for headers in (users.other, users.owner):
        r = await client.post(
            _comments(video.id), json={"text": "re", "parent_id": held["id"]}, headers=headers
        )
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "comment_held"
    assert await _count(client, video.id, {}) == 0
    r = await client.post(f"/api/gallery/comments/{held['id']}/approve", headers=users.owner)
    assert r.status_code == 200, r.text
    reply = await _post(client, video.id, users.owner, "Welcome", parent=held["id"])
    assert reply["status"] == "approved"
    assert await _count(client, video.id, {}) == 2


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.UNLISTED])
async def test_comments_follow_the_video(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo, visibility: Visibility
) -> None:
    video = await seed_video(users.owner_id, visibility=visibility)
    mine = await _post(client, video.id, users.owner, "owner note")
    for headers in ({}, users.other):
        r = await client.get(_comments(video.id), headers=headers)
        if visibility is Visibility.PRIVATE:
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "video_not_found"
            r = await client.post(_comments(video.id), json={"text": "x"}, headers=users.other)
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "video_not_found"
            for path in (
                f"/api/gallery/comments/{mine['id']}",
                f"/api/gallery/comments/{mine['id']}/replies",
            ):
                r = await client.get(path, headers=headers)
                assert r.status_code == 404, path
        else:
            assert r.status_code == 200
            assert len(r.json()["items"]) == 1
    assert len((await client.get(_comments(video.id), headers=users.admin)).json()["items"]) == 1
    r = await client.get(_comments(uuid.uuid4()))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "video_not_found"

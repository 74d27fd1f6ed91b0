"""Comments, ratings and reports on the watch page, and the admins' moderation page, in
a real Chromium against a real ``videoforge serve``.

Videos here are public import placeholders made over the API (``POST
/api/gallery/videos``): the watch page shows its comments and ratings whatever the
processing status, so no transcoding is needed. Hostile comment text must come out as
text: no script runs, no dialog opens, no element is made from it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.api_user import ApiUser, grant_admin
from tests.browser.pages import DESKTOP, log_in, watch

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>alert('script')</script>",
    "<img src=x onerror=\"alert('onerror')\">",
    "javascript:alert('js')",
]
LINK = "https://example.com/docs?a=1&b=2"


class Commenter(ApiUser):
    def video(self, title: str) -> dict[str, Any]:
        """A public video record to comment on (never processed: comments need none)."""
        resp = self.http.post(
            "/api/gallery/videos",
            json={
                "title": title,
                "visibility": "public",
                "source_url": "https://example.com/clip.mp4",
            },
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())


@pytest.fixture
def accounts(platform: Any) -> Iterator[dict[str, Commenter]]:
    token = uuid.uuid4().hex[:8]
    users = {
        name: Commenter(platform.url, f"{name}-{token}@example.com")
        for name in ("owner", "viewer", "admin")
    }
    grant_admin(platform, users["admin"].email)
    try:
        yield users
    finally:
        for user in users.values():
            user.http.close()


def _seed_comments(platform: Any, video_id: str, texts: list[str]) -> None:
    """Comments written straight into the platform's database (SQLite), a minute apart:
    posting them would spend the per-address comment limit the other tests need."""
    db = sqlite3.connect(platform.data_dir / "videoforge.db", timeout=30)
    try:
        with db:
            for n, text in enumerate(texts):
                at = f"2026-01-01 00:{n:02d}:00.000000"
                db.execute(
                    "INSERT INTO gallery_comments (id, video_id, parent_id, author_id,"
                    " author_name, text, status, hold_reason, deleted, pinned, replies_count,"
                    " edited_at, created_at, updated_at) VALUES (?, ?, NULL, 'seeded',"
                    " 'Seeded', ?, 'approved', NULL, 0, 0, 0, NULL, ?, ?)",
                    (uuid.uuid4().hex, uuid.UUID(video_id).hex, text, at, at),
                )
            db.execute(
                "UPDATE gallery_videos SET comments_count = comments_count + ? WHERE id = ?",
                (len(texts), uuid.UUID(video_id).hex),
            )
    finally:
        db.close()


def _page(browser: Any, problems: list[str]) -> Any:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch(page, problems)
    return page


def test_comments_replies_and_hostile_text(
    platform: Any, browser: Any, accounts: dict[str, Commenter], screenshots: Path
) -> None:
    base = platform.url
    video = accounts["owner"].video("Comment target")
    problems: list[str] = []
    page = _page(browser, problems)
    try:
        log_in(page, base, accounts["viewer"].email)
        page.goto(f"{base}/watch/{video['id']}")
        section = page.locator("section.comments")
        section.get_by_text("No comments yet.").wait_for()
        box = section.get_by_placeholder("Add a comment…")
        for text in [*HOSTILE, f"Read {LINK}. Thanks"]:
            box.fill(text)
            section.get_by_role("button", name="Comment", exact=True).click()
            shown = section.locator("li.comment .comment__text", has_text=text.split(" ")[0])
            shown.first.wait_for()
        page.locator(".comments__title", has_text="4 comments").wait_for()
        page.locator(".watch__comments-count", has_text="4 comments").wait_for(state="attached")

        texts = page.locator("ol.comment-list > li.comment > .comment__text")
        assert texts.count() == 4
        shown = texts.all_inner_texts()
        for payload in HOSTILE:
            assert payload in shown, (payload, shown)
        # Nothing became markup: no script or img inside comments, one link, to https.
        assert page.locator(".comments script, .comments img").count() == 0
        links = page.locator(".comments .comment__text a")
        assert links.count() == 1
        assert links.get_attribute("href") == LINK
        assert links.get_attribute("rel") == "nofollow ugc noopener"
        assert links.inner_text() == LINK  # the full stop after it is not part of it
        assert page.locator('.comments a[href^="javascript"]').count() == 0

        # A reply, shown in the thread; after a reload behind "View 1 reply".
        first = page.locator("ol.comment-list > li.comment", has_text="Read https").first
        first.locator('[data-action="reply"]').first.click()
        first.get_by_placeholder("Add a reply…").fill("A reply to myself")
        first.locator(".comment__reply").get_by_role("button", name="Reply", exact=True).click()
        first.locator("li.comment--reply", has_text="A reply to myself").wait_for()
        page.reload()
        thread = page.locator("ol.comment-list > li.comment", has_text="Read https").first
        thread.get_by_role("button", name="View 1 reply").click()
        thread.locator("li.comment--reply", has_text="A reply to myself").wait_for()
        page.locator(".comments__title", has_text="5 comments").wait_for()

        # Edit one's own comment.
        script_id = page.locator(
            "ol.comment-list > li.comment", has_text="<script>"
        ).first.get_attribute("data-comment-id")
        # By id: once the editor opens, the text is in a textarea, not the item's text.
        script = page.locator(f'li.comment[data-comment-id="{script_id}"]')
        script.locator('[data-action="edit"]').click()
        script.get_by_role("textbox").fill("Edited to plain words")
        script.get_by_role("button", name="Save").click()
        page.locator("li.comment", has_text="Edited to plain words").locator(
            ".comment__edited"
        ).wait_for()
        page.screenshot(path=str(screenshots / "comments-hostile-text.png"), full_page=True)

        # Deleting the thread leaves "Comment deleted" above its reply; deleting that
        # last reply takes the placeholder too (as the server does).
        thread_id = thread.get_attribute("data-comment-id")
        thread = page.locator(f'li.comment[data-comment-id="{thread_id}"]')

        def delete(item: Any) -> None:
            item.locator('[data-action="delete"]').first.click()
            page.locator("dialog").get_by_role("button", name="Delete").click()

        delete(thread)
        thread.locator(".comment__text", has_text="Comment deleted").first.wait_for()
        page.locator(".comments__title", has_text="4 comments").wait_for()
        reply = thread.locator("li.comment--reply", has_text="A reply to myself")
        assert reply.is_visible()
        delete(reply)
        thread.wait_for(state="detached")
        page.locator(".comments__title", has_text="3 comments").wait_for()
        page.reload()
        page.locator(".comments__title", has_text="3 comments").wait_for()
        assert page.locator(f'li.comment[data-comment-id="{thread_id}"]').count() == 0
        assert problems == [], problems
    finally:
        page.context.close()


def test_like_toggling(platform: Any, browser: Any, accounts: dict[str, Commenter]) -> None:
    base = platform.url
    video = accounts["owner"].video("Rate me")
    problems: list[str] = []
    page = _page(browser, problems)
    try:
        log_in(page, base, accounts["viewer"].email)
        page.goto(f"{base}/watch/{video['id']}")
        like = page.locator('[data-rating="like"]')
        dislike = page.locator('[data-rating="dislike"]')
        like.wait_for()
        assert like.get_attribute("aria-pressed") == "false"

        def state() -> tuple[str | None, str, str | None, str]:
            return (
                like.get_attribute("aria-pressed"),
                like.locator(".rating__count").inner_text(),
                dislike.get_attribute("aria-pressed"),
                dislike.locator(".rating__count").inner_text(),
            )

        def after(click: Any, expected: tuple[str, str, str, str]) -> None:
            click.click()
            page.wait_for_function(
                "([a, b]) => {"
                " const q = (r) => document.querySelector(`[data-rating=${r}]`);"
                " return q('like').getAttribute('aria-pressed') === a"
                " && q('dislike').getAttribute('aria-pressed') === b; }",
                arg=[expected[0], expected[2]],
            )
            assert state() == expected

        after(like, ("true", "1", "false", "0"))
        after(dislike, ("false", "0", "true", "1"))
        after(dislike, ("false", "0", "false", "0"))
        after(like, ("true", "1", "false", "0"))
        # The caller's own rating survives a reload; the server agrees.
        page.reload()
        page.locator('[data-rating="like"][aria-pressed="true"]').wait_for()
        stored = accounts["viewer"].http.get(f"/api/gallery/videos/{video['id']}").json()
        assert (stored["likes"], stored["dislikes"], stored["my_rating"]) == (1, 0, "like")
        other = accounts["admin"].http.get(f"/api/gallery/videos/{video['id']}").json()
        assert other["my_rating"] is None
        assert problems == [], problems
    finally:
        page.context.close()


def test_a_report_reaches_the_admin_queue(
    platform: Any, browser: Any, accounts: dict[str, Commenter], screenshots: Path
) -> None:
    base = platform.url
    title = f"Reported {uuid.uuid4().hex[:6]}"
    video = accounts["owner"].video(title)
    problems: list[str] = []
    viewer = _page(browser, problems)
    admin = _page(browser, problems)
    try:
        log_in(viewer, base, accounts["viewer"].email)
        viewer.goto(f"{base}/watch/{video['id']}")
        viewer.locator('.watch__bar [data-action="report"]').click()
        dialog = viewer.locator("dialog.dialog")
        dialog.get_by_label("Spam or misleading").check()
        dialog.get_by_label("Anything else").fill("<b>not bold</b> reupload of my clip")
        dialog.get_by_role("button", name="Report").click()
        viewer.get_by_text("The moderators will look at it.").wait_for()

        log_in(admin, base, accounts["admin"].email)
        admin.get_by_role("link", name="Moderation").click()
        card = admin.locator("li.report-card", has_text=title)
        card.wait_for()
        assert "1 report" in card.inner_text()
        assert "Spam or misleading \u00d7 1" in card.inner_text()  # x: the times sign
        note = card.locator(".report-card__notes li")
        assert note.inner_text() == "<b>not bold</b> reupload of my clip"
        assert card.locator("b").count() == 0
        admin.screenshot(path=str(screenshots / "moderation-queue.png"), full_page=True)

        # Hide it: gone for the viewer, and the action is in the log.
        card.locator('[data-action="hide"]').click()
        admin.locator("dialog.dialog").get_by_role("button", name="Hide video").click()
        admin.locator("li.report-card", has_text=title).wait_for(state="detached")
        admin.locator(".moderation-log", has_text="hide video").wait_for()
        gone = accounts["viewer"].http.get(f"/api/gallery/videos/{video['id']}")
        assert gone.status_code == 404
        assert accounts["owner"].http.get(f"/api/gallery/videos/{video['id']}").json()["hidden"]
        assert problems == [], problems
    finally:
        viewer.context.close()
        admin.context.close()


def test_owner_holds_approves_pins_and_pages(
    platform: Any, browser: Any, accounts: dict[str, Commenter]
) -> None:
    """The video's owner turns on approval, approves a held comment from the queue and
    pins a comment; a long list pages with "Load more comments"."""
    base = platform.url
    video = accounts["owner"].video("Owner controls")
    _seed_comments(platform, video["id"], [f"filler {n}" for n in range(22)])
    problems: list[str] = []
    owner = _page(browser, problems)
    viewer = _page(browser, problems)
    try:
        log_in(owner, base, accounts["owner"].email)
        owner.goto(f"{base}/watch/{video['id']}")
        comments = owner.locator("section.comments")
        comments.locator("li.comment").first.wait_for()
        assert comments.locator("ol.comment-list > li.comment").count() == 20
        comments.get_by_role("button", name="Load more comments").click()
        owner.wait_for_function(
            "() => document.querySelectorAll('section.comments ol.comment-list > li.comment')"
            ".length === 22"
        )
        assert comments.get_by_role("button", name="Load more comments").is_hidden()
        comments.get_by_label("Comments", exact=True).select_option("held")
        owner.get_by_text("Comment setting saved.").wait_for()

        log_in(viewer, base, accounts["viewer"].email)
        viewer.goto(f"{base}/watch/{video['id']}")
        viewer.get_by_text("reviewed by its owner before they show").wait_for()
        viewer.get_by_placeholder("Add a comment…").fill("Please let me in")
        viewer.get_by_role("button", name="Comment", exact=True).click()
        viewer.get_by_text("will show once the video's owner approves it").wait_for()
        held = viewer.locator("li.comment", has_text="Please let me in")
        held.locator(".badge--held").wait_for()

        owner.reload()
        queue = owner.locator(".comments__queue")
        queue.get_by_text("Held for review (1)").wait_for()
        queue.locator("li.comment", has_text="Please let me in").locator(
            '[data-action="approve"]'
        ).click()
        owner.get_by_text("Comment approved.").wait_for()
        queue.wait_for(state="hidden")
        approved = accounts["admin"].http.get(f"/api/gallery/videos/{video['id']}/comments")
        assert approved.json()["items"][0]["text"] == "Please let me in"

        # Pin the oldest filler: it moves to the top with its badge.
        owner.locator("section.comments").get_by_label("Sort").select_option("oldest")
        first = owner.locator("section.comments ol.comment-list > li.comment").first
        first.get_by_text("filler 0").wait_for()
        first.locator('[data-action="pin"]').click()
        owner.get_by_label("Sort").select_option("newest")
        top = owner.locator("section.comments ol.comment-list > li.comment").first
        top.locator(".badge--pinned").wait_for()
        assert "filler 0" in top.inner_text()
        assert problems == [], problems
    finally:
        owner.context.close()
        viewer.context.close()


def test_admin_deletes_a_reported_comment_and_blocks_then_unblocks_its_author(
    platform: Any, browser: Any, accounts: dict[str, Commenter]
) -> None:
    """A comment reported from its Report button: the admin blocks its author from
    commenting (the author's next comment is refused), deletes it, finds the author
    under "Blocked accounts" and unblocks them (they comment again); a video's report
    is dismissed. Every action is in the log."""
    base = platform.url
    video = accounts["owner"].video(f"Moderated {uuid.uuid4().hex[:6]}")
    spam = f"Cheap pills {uuid.uuid4().hex[:6]}"
    posted = accounts["viewer"].http.post(
        f"/api/gallery/videos/{video['id']}/comments", json={"text": spam}
    )
    assert posted.status_code == 201, posted.text
    filed = accounts["viewer"].http.post(
        f"/api/gallery/videos/{video['id']}/reports", json={"reason": "other"}
    )
    assert filed.status_code == 201, filed.text
    viewer_id = posted.json()["author_id"]
    problems: list[str] = []
    owner = _page(browser, problems)
    viewer = _page(browser, problems)
    admin = _page(browser, problems)
    try:
        log_in(owner, base, accounts["owner"].email)
        owner.goto(f"{base}/watch/{video['id']}")
        item = owner.locator("li.comment", has_text=spam)
        item.locator('[data-action="report"]').click()
        dialog = owner.locator("dialog.dialog")
        dialog.get_by_label("Spam or misleading").check()
        dialog.get_by_role("button", name="Report").click()
        owner.get_by_text("The moderators will look at it.").wait_for()

        log_in(admin, base, accounts["admin"].email)
        admin.goto(f"{base}/moderation")
        card = admin.locator('li.report-card[data-target-type="comment"]', has_text=spam)
        card.locator('[data-action="block-comment"]').click()
        admin.locator("dialog.dialog").get_by_role(
            "button", name="Block author from commenting"
        ).click()
        blocked = admin.locator(f'.block-list__item[data-user-id="{viewer_id}"]')
        blocked.wait_for()
        assert "blocked from commenting" in blocked.inner_text()

        log_in(viewer, base, accounts["viewer"].email)
        viewer.goto(f"{base}/watch/{video['id']}")
        viewer.get_by_placeholder("Add a comment…").fill("Let me speak")
        viewer.get_by_role("button", name="Comment", exact=True).click()
        viewer.get_by_text("Your account may not comment on this site.").wait_for()

        card.locator('[data-action="delete-comment"]').click()
        admin.locator("dialog.dialog").get_by_role("button", name="Delete comment").click()
        card.wait_for(state="detached")
        gone = accounts["admin"].http.get(f"/api/gallery/videos/{video['id']}/comments")
        assert spam not in gone.text

        video_card = admin.locator(
            'li.report-card[data-target-type="video"]', has_text=video["title"]
        )
        video_card.locator('[data-action="dismiss"]').click()
        video_card.wait_for(state="detached")

        blocked.locator('[data-action="unblock"]').click()
        admin.locator("dialog.dialog").get_by_role("button", name="Unblock").click()
        blocked.wait_for(state="detached")
        log = admin.locator(".moderation-log")
        for action in ("block user", "delete comment", "dismiss", "unblock user"):
            log.get_by_text(action, exact=True).first.wait_for()

        viewer.reload()
        viewer.get_by_placeholder("Add a comment…").fill("Back again")
        viewer.get_by_role("button", name="Comment", exact=True).click()
        viewer.locator("li.comment", has_text="Back again").wait_for()
        assert problems == [], problems
    finally:
        for page in (owner, viewer, admin):
            page.context.close()


def test_the_moderation_page_pages_its_queue_and_its_log(
    platform: Any, browser: Any, accounts: dict[str, Commenter]
) -> None:
    """More open reports than a page (51 targets) and more actions than a page: "Show
    more reports" and "Show older actions" bring the rest. The seeded rows are old, so
    other tests' reports keep their first-page places, and are removed afterwards."""
    videos = [accounts["owner"].video(f"Queued {n:02d}") for n in range(51)]
    reports = [uuid.uuid4().hex for _ in videos]
    seeded_actions: list[int | None] = []
    db = sqlite3.connect(platform.data_dir / "videoforge.db", timeout=30)
    try:
        with db:
            for n, (video, report) in enumerate(zip(videos, reports, strict=True)):
                at = f"2001-01-01 00:{n:02d}:00.000000"
                db.execute(
                    "INSERT INTO gallery_reports (id, target_type, target_id, video_id,"
                    " comment_id, reporter_id, reason, note, status, created_at) VALUES"
                    " (?, 'video', ?, ?, NULL, 'seeded', 'spam', NULL, 'open', ?)",
                    (report, uuid.UUID(video["id"]).hex, uuid.UUID(video["id"]).hex, at),
                )
            cursor = db.execute(
                "INSERT INTO gallery_moderation_actions (actor_id, action, target_type,"
                " target_id, video_id, note, created_at) VALUES ('seeded-admin', 'dismiss',"
                " 'video', 'oldest-seeded', NULL, NULL, '2001-01-01 00:00:00.000000')"
            )
            seeded_actions.append(cursor.lastrowid)
            for n in range(24):
                cursor = db.execute(
                    "INSERT INTO gallery_moderation_actions (actor_id, action, target_type,"
                    " target_id, video_id, note, created_at) VALUES ('seeded-admin',"
                    " 'dismiss', 'video', ?, NULL, NULL, '2001-01-01 00:01:00.000000')",
                    (f"seeded-{n}",),
                )
                seeded_actions.append(cursor.lastrowid)
        problems: list[str] = []
        admin = _page(browser, problems)
        try:
            log_in(admin, platform.url, accounts["admin"].email)
            admin.goto(f"{platform.url}/moderation")
            cards = admin.locator("li.report-card")
            cards.first.wait_for()
            assert cards.count() == 50
            admin.get_by_role("button", name="Show more reports").click()
            admin.locator("li.report-card", has_text="Queued 00").wait_for()
            assert cards.count() >= 51
            assert admin.get_by_role("button", name="Show more reports").is_hidden()

            log = admin.locator(".moderation-log > li")
            assert log.count() == 20
            assert admin.locator(".moderation-log", has_text="oldest-seeded").count() == 0
            older = admin.get_by_role("button", name="Show older actions")
            older.click()
            admin.locator(".moderation-log > li", has_text="oldest-seeded").wait_for()
            assert log.count() > 20
            assert problems == [], problems
        finally:
            admin.context.close()
    finally:
        with db:
            db.executemany("DELETE FROM gallery_reports WHERE id = ?", [(r,) for r in reports])
            db.executemany(
                "DELETE FROM gallery_moderation_actions WHERE id = ?",
                [(a,) for a in seeded_actions],
            )
        db.close()

"""Who may see and change a video — the one place these rules are written.

A private video is indistinguishable from a missing one for everyone but its owner and
admins (404, never 403), and so is a video not published yet (a draft, one waiting for
its processing, or one scheduled for later: gallery.publishing). Listings apply the
same rules in SQL (:func:`listable_by`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, true

from videoforge.gallery import publishing
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import Forbidden, NotFound, Unauthorized


def is_owner(video: GalleryVideo, principal: Principal | None) -> bool:
    return principal is not None and principal.user_id == video.user_id


def is_owner_or_admin(video: GalleryVideo, principal: Principal | None) -> bool:
    return principal is not None and (principal.is_admin or principal.user_id == video.user_id)


def can_view(video: GalleryVideo, principal: Principal | None) -> bool:
    """Public and unlisted videos are visible to anyone with the id (unlisted ids are
    random uuid4, so the id is the secret); private ones only to the owner and admins,
    and so are videos a moderator hid (gallery.moderation) and videos not published
    yet (gallery.publishing)."""
    if video.hidden or not publishing.is_published(video):
        return is_owner_or_admin(video, principal)
    if video.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return True
    return is_owner_or_admin(video, principal)


def not_found() -> NotFound:
    return NotFound("No such video.", code="video_not_found")


def ensure_visible(video: GalleryVideo | None, principal: Principal | None) -> GalleryVideo:
    """The video, or 404 when it does not exist or the caller may not see it."""
    if video is None or not can_view(video, principal):
        raise not_found()
    return video


def ensure_owner(video: GalleryVideo | None, principal: Principal | None) -> GalleryVideo:
    """Owner-only actions (edits). 404 if the caller cannot see the video at all."""
    video = ensure_visible(video, principal)
    if principal is None:
        raise Unauthorized("Log in to do this.", code="auth_required")
    if not is_owner(video, principal):
        raise Forbidden("Only the owner can change this video.", code="not_owner")
    return video


def ensure_owner_or_admin(video: GalleryVideo | None, principal: Principal | None) -> GalleryVideo:
    """Owner-or-admin actions (delete, analytics). 404 if the caller cannot see it."""
    video = ensure_visible(video, principal)
    if principal is None:
        raise Unauthorized("Log in to do this.", code="auth_required")
    if not is_owner_or_admin(video, principal):
        raise Forbidden("Only the owner or an administrator can do this.", code="not_owner")
    return video


def listable_branches(principal: Principal | None) -> list[ColumnElement[bool]]:
    """The SQL filter for listings and search, as alternatives (OR-ed): ready, published
    public videos for everyone, plus everything of one's own; admins see everything. Unlisted
    videos are never listed for others.

    Kept as separate branches so a listing can run each on its own index (an ``OR``
    across two indexes cannot be read in order, and a page would sort every row)."""
    public_ready = and_(
        GalleryVideo.visibility == Visibility.PUBLIC,
        GalleryVideo.status == VideoStatus.READY,
        GalleryVideo.hidden.is_(False),
        publishing.published_clause(),
    )
    if principal is None:
        return [public_ready]
    if principal.is_admin:
        return [true()]
    return [public_ready, GalleryVideo.user_id == principal.user_id]


def listable_by(principal: Principal | None) -> ColumnElement[bool]:
    """:func:`listable_branches` as one condition."""
    return or_(*listable_branches(principal))

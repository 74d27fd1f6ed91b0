"""Playback URLs: short-lived signed URLs, and HLS playlists served by the gallery.

Objects live in a private bucket, and an HLS playlist names its segments relatively,
so a presigned master URL alone would not play. The gallery therefore serves the master
and variant playlists itself at ``/api/gallery/stream/{id}/hls/{path}?token=...`` and
rewrites every URI inside them: variant playlists point back here (same token), media
segments, init sections and keys become presigned storage URLs. Players do not send
``Authorization`` headers, so the token (an HMAC over the video id and an expiry, under
the install's playlist-token key) is in the URL.

The same token serves the other manifests and text tracks: the DASH manifest
(``/dash/manifest.mpd``, every segment URL presigned), the storyboard's WebVTT
(``/storyboard.vtt``, sprite URLs presigned) and the chapters (``/chapters.vtt``: the
description's timecodes when it has them, else the container's). Captions the owner
uploaded are added to the master playlist (and the MPD) when it is served rather than
written into the processor's outputs: those belong to a job and are replaced when the
video is processed again, while captions belong to the video; serving them from the
table also makes an upload or a delete visible at once, with nothing to rewrite.

This module holds the tokens, the URLs and the checks; :mod:`manifests` writes what is
served.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from videoforge.gallery.access import is_owner
from videoforge.gallery.captions.chapters import description_chapters
from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.captions.schemas import AudioTrackRead, ChapterRead
from videoforge.gallery.captions.service import caption_tracks
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.gallery.schemas import StreamRendition, StreamUrls
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import Conflict, Forbidden, NotFound
from videoforge.infra.secrets import KeyPurpose, purpose_key
from videoforge.infra.storage.base import ObjectNotFound, Storage
from videoforge.messages import Playable
from videoforge.settings import Settings

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
DASH_CONTENT_TYPE = "application/dash+xml"
VTT_CONTENT_TYPE = "text/vtt"
#: Segment URLs never live less than this, even when the token is about to expire.
MIN_SEGMENT_TTL = 60


def _mac(settings: Settings, video_id: uuid.UUID, expires: int) -> str:
    # A key of its own: a playlist token can never be confused with any other HMAC.
    key = purpose_key(settings, KeyPurpose.PLAYLIST_TOKENS)
    message = f"{video_id.hex}.{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(settings: Settings, video_id: uuid.UUID, expires: int) -> str:
    """``{expires}.{mac}``: valid for this video until ``expires`` (unix seconds)."""
    return f"{expires}.{_mac(settings, video_id, expires)}"


def verify_token(settings: Settings, video_id: uuid.UUID, token: str | None) -> int:
    """The token's expiry; 403 ``invalid_token`` when forged, for another video or expired."""
    invalid = Forbidden("The playback link is invalid or has expired.", code="invalid_token")
    if not token:
        raise invalid
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or not mac:
        raise invalid
    expires = int(expires_text)
    if not hmac.compare_digest(mac, _mac(settings, video_id, expires)):
        raise invalid
    if expires <= int(time.time()):
        raise invalid
    return expires


def growing(video: GalleryVideo) -> Playable | None:
    """What of a video still processing can be watched already (None: nothing, or the
    video is not processing)."""
    if video.status is not VideoStatus.PROCESSING or not video.playable:
        return None
    try:
        return Playable.model_validate(video.playable)
    except ValueError:
        return None


def hls_base(video: GalleryVideo) -> str:
    """The storage "directory" of the master playlist; every playlist must be inside it."""
    early = growing(video)
    if early is not None:
        return posixpath.dirname(early.master_key)
    assert video.hls_master_key is not None
    return posixpath.dirname(video.hls_master_key)


def playlist_key(video: GalleryVideo, path: str) -> str:
    """The storage key of a served playlist path, refusing anything outside the HLS dir."""
    base = hls_base(video)
    normalised = posixpath.normpath(posixpath.join(base, path))
    if (
        not path.endswith(".m3u8")
        or "\\" in path
        or path.startswith("/")
        or not normalised.startswith(base + "/")
    ):
        raise NotFound("No such playlist.", code="playlist_not_found")
    return normalised


def playlist_url(base_url: str, video_id: uuid.UUID, relative: str, token: str) -> str:
    return (
        f"{base_url}/api/gallery/stream/{video_id}/hls/{quote(relative)}"
        f"?token={quote(token, safe='')}"
    )


@dataclass(frozen=True)
class PlaylistContext:
    storage: Storage
    video: GalleryVideo
    token: str
    segment_ttl: int


def ensure_playable(video: GalleryVideo) -> None:
    """Ready, or processing with its first segments stored (a growing stream)."""
    if growing(video) is None:
        ensure_ready(video)


def ensure_ready(video: GalleryVideo) -> None:
    # A failed video will never become playable by waiting: say so, with its own code.
    if video.status is VideoStatus.FAILED:
        raise Conflict("This video failed to process and cannot be played.", code="video_failed")
    if video.status is not VideoStatus.READY:
        raise Conflict("The video is not ready to play yet.", code="video_not_ready")


def text_url(base_url: str, video_id: uuid.UUID, name: str, token: str) -> str:
    """A URL of a manifest or text track the gallery serves (``dash/manifest.mpd``...)."""
    return f"{base_url}/api/gallery/stream/{video_id}/{name}?token={quote(token, safe='')}"


def media_of(video: GalleryVideo) -> dict[str, Any]:
    return dict(video.media or {})


def video_chapters(video: GalleryVideo) -> list[ChapterRead]:
    """The description's chapters when it has them (the uploader's latest word), else
    the container's (from the processor)."""
    from_description = description_chapters(video.description or "", video.duration)
    if from_description:
        return from_description
    return [ChapterRead.model_validate(c) for c in media_of(video).get("chapters") or []]


async def stream_urls(
    video: GalleryVideo,
    principal: Principal | None,
    storage: Storage,
    settings: Settings,
    base_url: str,
    uploaded: list[GalleryCaption] | None = None,
) -> StreamUrls:
    """Short-lived URLs for everything playable; the original only for its owner.

    A video still processing whose first segments are stored gets its growing HLS
    stream alone (``partial``): the lowest quality so far, no downloads or DASH yet.
    """
    ensure_playable(video)
    ttl = settings.stream_url_ttl
    expires = int(time.time()) + ttl
    token = make_token(settings, video.id, expires)
    early = growing(video)
    if early is not None:
        return await _growing_urls(video, early, storage, ttl, token, base_url, expires, uploaded)
    media = media_of(video)
    hls: str | None = None
    if video.hls_master_key:
        hls = playlist_url(base_url, video.id, posixpath.basename(video.hls_master_key), token)
    dash = (
        text_url(base_url, video.id, "dash/manifest.mpd", token)
        if video.hls_master_key and media.get("dash_manifest_key")
        else None
    )
    chapters = video_chapters(video)
    renditions = [
        StreamRendition(
            quality=str(r["quality"]),
            width=int(r["width"]),
            height=int(r["height"]),
            bandwidth=int(r.get("bandwidth", 0)),
            url=await storage.presign_get(str(r["mp4_key"]), expires_in=ttl),
        )
        for r in video.renditions or []
        if r.get("mp4_key")
    ]
    original: str | None = None
    if video.s3_key and is_owner(video, principal):
        original = await storage.presign_get(
            video.s3_key,
            expires_in=ttl,
            download_name=video.original_filename or "video",
            content_type=video.content_type or "application/octet-stream",
        )
    thumbnail = (
        await storage.presign_get(video.thumbnail_key, expires_in=ttl)
        if video.thumbnail_key
        else None
    )
    preview = (
        await storage.presign_get(video.preview_key, expires_in=ttl) if video.preview_key else None
    )
    return StreamUrls(
        video_id=video.id,
        hls=hls,
        dash=dash,
        renditions=renditions,
        audio_tracks=[
            AudioTrackRead(
                language=a.get("language"), label=str(a["label"]), default=bool(a["default"])
            )
            for a in media.get("audio_tracks") or []
        ],
        captions=await caption_tracks(video, uploaded or [], storage, ttl),
        chapters=chapters,
        chapters_url=text_url(base_url, video.id, "chapters.vtt", token) if chapters else None,
        storyboard=(
            text_url(base_url, video.id, "storyboard.vtt", token)
            if media.get("storyboard_key")
            else None
        ),
        thumbnail=thumbnail,
        preview=preview,
        original=original,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


async def _growing_urls(
    video: GalleryVideo,
    early: Playable,
    storage: Storage,
    ttl: int,
    token: str,
    base_url: str,
    expires: int,
    uploaded: list[GalleryCaption] | None,
) -> StreamUrls:
    thumbnail = (
        await storage.presign_get(video.thumbnail_key, expires_in=ttl)
        if video.thumbnail_key
        else None
    )
    return StreamUrls(
        video_id=video.id,
        hls=playlist_url(base_url, video.id, posixpath.basename(early.master_key), token),
        renditions=[],
        audio_tracks=[
            AudioTrackRead(language=a.language, label=a.label, default=a.default)
            for a in early.audio_tracks
        ],
        captions=await caption_tracks(video, uploaded or [], storage, ttl),
        thumbnail=thumbnail,
        preview=None,
        original=None,
        partial=True,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def context(
    video: GalleryVideo,
    token: str | None,
    storage: Storage,
    settings: Settings,
    *,
    growing_ok: bool = False,
) -> PlaylistContext:
    """Checks the token and the video; the context every served manifest is signed in
    (``growing_ok``: a processing video's growing stream is served too)."""
    expires = verify_token(settings, video.id, token)
    if growing_ok:
        ensure_playable(video)
    else:
        ensure_ready(video)
    assert token is not None
    return PlaylistContext(
        storage=storage,
        video=video,
        token=token,
        segment_ttl=max(MIN_SEGMENT_TTL, expires - int(time.time())),
    )


async def read_text(storage: Storage, key: str, missing: NotFound) -> str:
    try:
        return (await storage.get_bytes(key)).decode("utf-8")
    except (ObjectNotFound, UnicodeDecodeError):
        raise missing from None

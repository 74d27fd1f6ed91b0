"""Playback URLs: short-lived signed URLs, and HLS playlists served by the gallery.

Objects live in a private bucket, and an HLS playlist names its segments relatively,
so a presigned master URL alone would not play. The gallery therefore serves the master
and variant playlists itself at ``/api/gallery/stream/{id}/hls/{path}?token=...`` and
rewrites every URI inside them: variant playlists point back here (same token), media
segments, init sections and keys become presigned storage URLs. Players do not send
``Authorization`` headers, so the token (an HMAC over the video id and an expiry, under
the install's playlist-token key) is in the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from videoforge.gallery.access import is_owner
from videoforge.gallery.models import GalleryVideo, VideoStatus
from videoforge.gallery.schemas import StreamRendition, StreamUrls
from videoforge.infra.auth import Principal
from videoforge.infra.errors import Conflict, Forbidden, NotFound
from videoforge.infra.secrets import KeyPurpose, purpose_key
from videoforge.infra.storage.base import ObjectNotFound, Storage
from videoforge.settings import Settings

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
#: Segment URLs never live less than this, even when the token is about to expire.
MIN_SEGMENT_TTL = 60
_URI_ATTR = re.compile(r'URI="([^"]*)"')


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


def hls_base(video: GalleryVideo) -> str:
    """The storage "directory" of the master playlist; every playlist must be inside it."""
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


async def _rewrite_uri(ctx: PlaylistContext, current_key: str, uri: str) -> str | None:
    """A signed replacement for one URI of the playlist at ``current_key`` (None: drop)."""
    if "://" in uri or uri.startswith("//"):
        return None  # our processor writes relative URIs only; never pass others on
    target = posixpath.normpath(posixpath.join(posixpath.dirname(current_key), uri.split("?")[0]))
    base = hls_base(ctx.video)
    if not target.startswith(base + "/"):
        return None
    if target.endswith(".m3u8"):
        # Relative to the playlist being served (players resolve it against that URL),
        # so it works behind any proxy or host name.
        relative = posixpath.relpath(target, posixpath.dirname(current_key))
        return f"{quote(relative)}?token={quote(ctx.token, safe='')}"
    return await ctx.storage.presign_get(target, expires_in=ctx.segment_ttl)


async def rewrite_playlist(ctx: PlaylistContext, key: str, text: str) -> str:
    """Replace every URI (segment lines and ``URI="..."`` attributes) with a signed one.

    A URI that points outside the video's HLS directory (or elsewhere entirely) is
    dropped with its line, so a playlist can never be used to sign other objects.
    """
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            out.append(line)
            continue
        if line.startswith("#"):
            failed = False
            pieces: list[str] = []
            last = 0
            for match in _URI_ATTR.finditer(line):
                replacement = await _rewrite_uri(ctx, key, match.group(1))
                if replacement is None:
                    failed = True
                    break
                pieces.append(line[last : match.start(1)])
                pieces.append(replacement)
                last = match.end(1)
            if failed:
                continue
            pieces.append(line[last:])
            out.append("".join(pieces))
            continue
        replacement = await _rewrite_uri(ctx, key, line)
        if replacement is not None:
            out.append(replacement)
        elif out and out[-1].startswith(("#EXTINF", "#EXT-X-STREAM-INF")):
            out.pop()  # the tag described the URI we dropped
    return "\n".join(out) + "\n"


def ensure_ready(video: GalleryVideo) -> None:
    if video.status is not VideoStatus.READY:
        raise Conflict("The video is not ready to play yet.", code="video_not_ready")


async def stream_urls(
    video: GalleryVideo,
    principal: Principal | None,
    storage: Storage,
    settings: Settings,
    base_url: str,
) -> StreamUrls:
    """Short-lived URLs for everything playable; the original only for its owner."""
    ensure_ready(video)
    ttl = settings.stream_url_ttl
    expires = int(time.time()) + ttl
    hls: str | None = None
    if video.hls_master_key:
        token = make_token(settings, video.id, expires)
        hls = playlist_url(base_url, video.id, posixpath.basename(video.hls_master_key), token)
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
        renditions=renditions,
        thumbnail=thumbnail,
        preview=preview,
        original=original,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


async def serve_playlist(
    video: GalleryVideo,
    path: str,
    token: str | None,
    storage: Storage,
    settings: Settings,
) -> str:
    """The playlist at ``path`` (relative to the master's directory), URIs signed."""
    expires = verify_token(settings, video.id, token)
    ensure_ready(video)
    if not video.hls_master_key:
        raise NotFound("This video has no HLS stream.", code="playlist_not_found")
    key = playlist_key(video, path)
    try:
        text = (await storage.get_bytes(key)).decode("utf-8")
    except (ObjectNotFound, UnicodeDecodeError):
        raise NotFound("No such playlist.", code="playlist_not_found") from None
    assert token is not None
    ctx = PlaylistContext(
        storage=storage,
        video=video,
        token=token,
        segment_ttl=max(MIN_SEGMENT_TTL, expires - int(time.time())),
    )
    return await rewrite_playlist(ctx, key, text)

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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import posixpath
import re
import time
import uuid
import xml.etree.ElementTree as ET
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
from videoforge.infra.webvtt import vtt_document
from videoforge.settings import Settings

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
DASH_CONTENT_TYPE = "application/dash+xml"
VTT_CONTENT_TYPE = "text/vtt"
_CAPTION_PLAYLIST = re.compile(r"^captions/([a-z0-9-]{2,35})\.m3u8$")
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
    # A failed video will never become playable by waiting: say so, with its own code.
    if video.status is VideoStatus.FAILED:
        raise Conflict("This video failed to process and cannot be played.", code="video_failed")
    if video.status is not VideoStatus.READY:
        raise Conflict("The video is not ready to play yet.", code="video_not_ready")


def text_url(base_url: str, video_id: uuid.UUID, name: str, token: str) -> str:
    """A URL of a manifest or text track the gallery serves (``dash/manifest.mpd``...)."""
    return f"{base_url}/api/gallery/stream/{video_id}/{name}?token={quote(token, safe='')}"


def _media(video: GalleryVideo) -> dict[str, Any]:
    return dict(video.media or {})


def video_chapters(video: GalleryVideo) -> list[ChapterRead]:
    """The description's chapters when it has them (the uploader's latest word), else
    the container's (from the processor)."""
    from_description = description_chapters(video.description or "", video.duration)
    if from_description:
        return from_description
    return [ChapterRead.model_validate(c) for c in _media(video).get("chapters") or []]


async def stream_urls(
    video: GalleryVideo,
    principal: Principal | None,
    storage: Storage,
    settings: Settings,
    base_url: str,
    uploaded: list[GalleryCaption] | None = None,
) -> StreamUrls:
    """Short-lived URLs for everything playable; the original only for its owner."""
    ensure_ready(video)
    ttl = settings.stream_url_ttl
    expires = int(time.time()) + ttl
    token = make_token(settings, video.id, expires)
    media = _media(video)
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


def _context(
    video: GalleryVideo, token: str | None, storage: Storage, settings: Settings
) -> PlaylistContext:
    """Checks the token and the video; the context every served manifest is signed in."""
    expires = verify_token(settings, video.id, token)
    ensure_ready(video)
    assert token is not None
    return PlaylistContext(
        storage=storage,
        video=video,
        token=token,
        segment_ttl=max(MIN_SEGMENT_TTL, expires - int(time.time())),
    )


async def _read_text(storage: Storage, key: str, missing: NotFound) -> str:
    try:
        return (await storage.get_bytes(key)).decode("utf-8")
    except (ObjectNotFound, UnicodeDecodeError):
        raise missing from None


def _quoted(value: str) -> str:
    return '"' + "".join(ch for ch in value if ch not in '"\r\n') + '"'


def add_uploaded_captions(text: str, uploaded: list[GalleryCaption], token: str) -> str:
    """The master playlist with the owner's captions in its SUBTITLES group.

    An uploaded track replaces an extracted one of the same language; every variant
    then names the group (``SUBTITLES=``), whether or not the processor wrote one.
    """
    if not uploaded:
        return text
    languages = {c.language for c in uploaded}
    group = "subs"
    out: list[str] = []
    media_at = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            found = re.search(r'GROUP-ID="([^"]*)"', line)
            group = found.group(1) if found else group
            language = re.search(r'LANGUAGE="([^"]*)"', line)
            if language and language.group(1) in languages:
                continue  # replaced by the owner's upload
        if line.startswith("#EXT-X-STREAM-INF:"):
            if media_at is None:
                media_at = len(out)
            if "SUBTITLES=" not in line:
                line += f",SUBTITLES={_quoted(group)}"
        out.append(line)
    entries = [
        "#EXT-X-MEDIA:TYPE=SUBTITLES,"
        f"GROUP-ID={_quoted(group)},NAME={_quoted(c.label)},LANGUAGE={_quoted(c.language)},"
        "DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,"
        f"URI={_quoted(f'captions/{c.language}.m3u8?token={quote(token, safe=str())}')}"
        for c in uploaded
    ]
    at = media_at if media_at is not None else len(out)
    return "\n".join(out[:at] + entries + out[at:]) + "\n"


async def caption_playlist(
    ctx: PlaylistContext, language: str, uploaded: list[GalleryCaption]
) -> str:
    """The single-segment playlist of an uploaded caption (generated: it has no file)."""
    caption = next((c for c in uploaded if c.language == language), None)
    if caption is None:
        raise NotFound("No such playlist.", code="playlist_not_found")
    duration = max(1.0, float(ctx.video.duration or 1.0))
    url = await ctx.storage.presign_get(caption.key, expires_in=ctx.segment_ttl)
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{math.ceil(duration)}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{duration:.3f},",
            url,
            "#EXT-X-ENDLIST",
            "",
        ]
    )


async def serve_playlist(
    video: GalleryVideo,
    path: str,
    token: str | None,
    storage: Storage,
    settings: Settings,
    uploaded: list[GalleryCaption] | None = None,
) -> str:
    """The playlist at ``path`` (relative to the master's directory), URIs signed; the
    master gets the owner's captions, ``captions/{language}.m3u8`` is one of them."""
    ctx = _context(video, token, storage, settings)
    if not video.hls_master_key:
        raise NotFound("This video has no HLS stream.", code="playlist_not_found")
    caption = _CAPTION_PLAYLIST.match(path)
    if caption:
        return await caption_playlist(ctx, caption.group(1), uploaded or [])
    key = playlist_key(video, path)
    text = await _read_text(storage, key, NotFound("No such playlist.", code="playlist_not_found"))
    signed = await rewrite_playlist(ctx, key, text)
    if key == video.hls_master_key:
        signed = add_uploaded_captions(signed, uploaded or [], ctx.token)
    return signed


_MPD_NS = "urn:mpeg:dash:schema:mpd:2011"


def _q(tag: str) -> str:
    return f"{{{_MPD_NS}}}{tag}"


async def serve_dash(
    video: GalleryVideo,
    token: str | None,
    storage: Storage,
    settings: Settings,
    uploaded: list[GalleryCaption] | None = None,
) -> str:
    """The DASH manifest with every object URL presigned, plus the owner's captions.

    The MPD is the processor's own output (never a stranger's file); it is still parsed
    as XML and rebuilt, and a URL outside the video's HLS directory drops its
    representation, exactly as the playlists drop such lines.
    """
    ctx = _context(video, token, storage, settings)
    missing = NotFound("This video has no DASH manifest.", code="manifest_not_found")
    key = _media(video).get("dash_manifest_key")
    if not key or not video.hls_master_key:
        raise missing
    text = await _read_text(storage, str(key), missing)
    try:
        root = ET.fromstring(text)  # noqa: S314 (our processor's output, not user input)
    except ET.ParseError:
        raise missing from None
    base = posixpath.dirname(str(key))

    async def sign(uri: str | None) -> str | None:
        if not uri or "://" in uri or uri.startswith("/"):
            return None
        target = posixpath.normpath(posixpath.join(base, uri))
        if not target.startswith(hls_base(video) + "/"):
            return None
        return await ctx.storage.presign_get(target, expires_in=ctx.segment_ttl)

    languages = {c.language for c in uploaded or []}
    for period in root.findall(_q("Period")):
        for adaptation in list(period.findall(_q("AdaptationSet"))):
            if adaptation.get("contentType") == "text" and adaptation.get("lang") in languages:
                period.remove(adaptation)  # replaced by the owner's upload
                continue
            for representation in list(adaptation.findall(_q("Representation"))):
                ok = True
                for element in representation.iter():
                    for attr in ("sourceURL", "media"):
                        if element.get(attr) is not None:
                            signed = await sign(element.get(attr))
                            ok = ok and signed is not None
                            element.set(attr, signed or "")
                    if element.tag == _q("BaseURL"):
                        signed = await sign(element.text)
                        ok = ok and signed is not None
                        element.text = signed or ""
                if not ok:
                    adaptation.remove(representation)
        for number, caption in enumerate(uploaded or []):
            text_set = ET.SubElement(
                period,
                _q("AdaptationSet"),
                id=f"caption-{number}",
                contentType="text",
                mimeType=VTT_CONTENT_TYPE,
                lang=caption.language,
            )
            ET.SubElement(
                text_set, _q("Role"), schemeIdUri="urn:mpeg:dash:role:2011", value="subtitle"
            )
            ET.SubElement(text_set, _q("Label")).text = caption.label
            representation = ET.SubElement(
                text_set, _q("Representation"), id=f"caption-{caption.language}", bandwidth="256"
            )
            ET.SubElement(representation, _q("BaseURL")).text = await ctx.storage.presign_get(
                caption.key, expires_in=ctx.segment_ttl
            )
    ET.register_namespace("", _MPD_NS)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


_SPRITE_CUE = re.compile(r"^(sprite_\d+\.jpg)(#xywh=\d+,\d+,\d+,\d+)$")


async def serve_storyboard(
    video: GalleryVideo, token: str | None, storage: Storage, settings: Settings
) -> str:
    """The storyboard's thumbnails track with each sprite sheet's URL presigned (the
    ``#xywh=`` fragment kept after the signature: fragments are never sent)."""
    ctx = _context(video, token, storage, settings)
    missing = NotFound("This video has no storyboard.", code="storyboard_not_found")
    key = _media(video).get("storyboard_key")
    if not key:
        raise missing
    text = await _read_text(storage, str(key), missing)
    base = posixpath.dirname(str(key))
    signed: dict[str, str] = {}
    out: list[str] = []
    for line in text.splitlines():
        match = _SPRITE_CUE.match(line.strip())
        if match is None:
            out.append(line)  # the header, timings and blank lines
            continue
        sheet = match.group(1)
        if sheet not in signed:
            signed[sheet] = await storage.presign_get(
                posixpath.join(base, sheet), expires_in=ctx.segment_ttl
            )
        out.append(signed[sheet] + match.group(2))
    return "\n".join(out) + "\n"


def serve_chapters(video: GalleryVideo, token: str | None, settings: Settings) -> str:
    """The chapters as a WebVTT chapters track (404 when the video has none)."""
    verify_token(settings, video.id, token)
    ensure_ready(video)
    chapters = video_chapters(video)
    if not chapters:
        raise NotFound("This video has no chapters.", code="chapters_not_found")
    return vtt_document((c.start, c.end, c.title) for c in chapters)

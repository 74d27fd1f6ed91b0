"""The manifests and text tracks the gallery serves itself, signed for one playback
token: HLS master and media playlists (every URI rewritten: playlists back here,
segments presigned), a still-growing stream's, the DASH manifest, the storyboard's
WebVTT and the chapters. Tokens, URLs and the checks before any of it are in
:mod:`playback`."""

from __future__ import annotations

import math
import posixpath
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.models import GalleryVideo
from videoforge.gallery.playback import (
    VTT_CONTENT_TYPE,
    PlaylistContext,
    context,
    ensure_ready,
    growing,
    hls_base,
    media_of,
    playlist_key,
    read_text,
    verify_token,
    video_chapters,
)
from videoforge.infra.errors import NotFound
from videoforge.infra.storage.base import Storage
from videoforge.infra.webvtt import vtt_document
from videoforge.messages import Playable
from videoforge.settings import Settings

_CAPTION_PLAYLIST = re.compile(r"^captions/([a-z0-9-]{2,35})\.m3u8$")
_URI_ATTR = re.compile(r'URI="([^"]*)"')


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
    master gets the owner's captions, ``captions/{language}.m3u8`` is one of them.
    While the video processes, the stream is :func:`serve_growing`'s."""
    ctx = context(video, token, storage, settings, growing_ok=True)
    early = growing(video)
    if early is not None:
        return await serve_growing(ctx, early, path, uploaded or [])
    if not video.hls_master_key:
        raise NotFound("This video has no HLS stream.", code="playlist_not_found")
    caption = _CAPTION_PLAYLIST.match(path)
    if caption:
        return await caption_playlist(ctx, caption.group(1), uploaded or [])
    key = playlist_key(video, path)
    text = await read_text(storage, key, NotFound("No such playlist.", code="playlist_not_found"))
    signed = await rewrite_playlist(ctx, key, text)
    if key == video.hls_master_key:
        signed = add_uploaded_captions(signed, uploaded or [], ctx.token)
    return signed


async def serve_growing(
    ctx: PlaylistContext, early: Playable, path: str, uploaded: list[GalleryCaption]
) -> str:
    """The growing stream of a video still processing, signed like any other.

    The master is written here from the event (the processor writes its own only at the
    end, with measured figures): the lowest rung and the audio tracks. Their media
    playlists are the processor's snapshots, which list only stored segments; they are
    served as ``EVENT`` playlists without an end, so players keep re-reading them. Any
    other playlist of the job is not served before it completes.
    """
    caption = _CAPTION_PLAYLIST.match(path)
    if caption:
        return await caption_playlist(ctx, caption.group(1), uploaded)
    key = playlist_key(ctx.video, path)
    if key == early.master_key:
        signed = await rewrite_playlist(ctx, key, growing_master(early))
        return add_uploaded_captions(signed, uploaded, ctx.token)
    served = {r.playlist_key for r in early.renditions} | {
        a.playlist_key for a in early.audio_tracks
    }
    missing = NotFound("No such playlist.", code="playlist_not_found")
    if key not in served:
        raise missing
    text = await read_text(ctx.storage, key, missing)
    return await rewrite_playlist(ctx, key, as_event(text))


def as_event(text: str) -> str:
    """A media playlist as a growing one: ``EVENT``, and no ``#EXT-X-ENDLIST`` (the
    processor's last snapshot may already hold every segment, the job is not done)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-PLAYLIST-TYPE:"):
            line = "#EXT-X-PLAYLIST-TYPE:EVENT"
        elif line.strip() == "#EXT-X-ENDLIST":
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def growing_master(early: Playable) -> str:
    """The master playlist of a growing stream (URIs relative to its directory)."""
    base = posixpath.dirname(early.master_key)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    names: set[str] = set()
    for track in early.audio_tracks:
        name = track.label
        while name in names:  # NAME is unique within a group
            name = f"{track.label} ({track.index})" if name == track.label else name + "'"
        names.add(name)
        attrs = ["TYPE=AUDIO", 'GROUP-ID="audio"', f"NAME={_quoted(name)}"]
        if track.language:
            attrs.append(f"LANGUAGE={_quoted(track.language)}")
        attrs += [
            f"DEFAULT={'YES' if track.default else 'NO'}",
            "AUTOSELECT=YES",
            f"URI={_quoted(posixpath.relpath(track.playlist_key, base))}",
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    audio_peak = max((a.bandwidth for a in early.audio_tracks), default=0)
    for rendition in early.renditions:
        codecs = rendition.codecs + (",mp4a.40.2" if early.audio_tracks else "")
        line = (
            f"#EXT-X-STREAM-INF:BANDWIDTH={max(1, rendition.bandwidth + audio_peak)},"
            f"RESOLUTION={rendition.width}x{rendition.height},CODECS={_quoted(codecs)}"
        )
        if early.audio_tracks:
            line += ',AUDIO="audio"'
        lines += [line, posixpath.relpath(rendition.playlist_key, base)]
    return "\n".join(lines) + "\n"


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
    ctx = context(video, token, storage, settings)
    missing = NotFound("This video has no DASH manifest.", code="manifest_not_found")
    key = media_of(video).get("dash_manifest_key")
    if not key or not video.hls_master_key:
        raise missing
    text = await read_text(storage, str(key), missing)
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
    ctx = context(video, token, storage, settings)
    missing = NotFound("This video has no storyboard.", code="storyboard_not_found")
    key = media_of(video).get("storyboard_key")
    if not key:
        raise missing
    text = await read_text(storage, str(key), missing)
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

"""Caption rules: parse an owner's SRT or WebVTT upload, normalise it, store it, list tracks.

An upload is parsed with ``pysubs2`` after a strict line check of our own (pysubs2 skips
what it cannot read; an owner should hear which line is wrong instead). What is stored
is always our own WebVTT: plain text cues only (any markup, HTML or ASS, is dropped and
``<``/``>``/``&`` escaped, so a caption can never be anything but text), at
``captions/{video_id}/{language}.{random}.vtt``: a new key per upload, whose previous
file is deleted once the row names the new one (a cache keyed on the path, as the CDN's
is, can never serve the replaced captions); deleting the video deletes the prefix.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass

import pysubs2
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from videoforge.gallery import deletions
from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.captions.schemas import CaptionRead, CaptionSource
from videoforge.gallery.models import GalleryVideo
from videoforge.infra.errors import NotFound, PayloadTooLarge, UnprocessableEntity
from videoforge.infra.storage.base import Storage
from videoforge.infra.storage.keys import new_caption_key
from videoforge.infra.webvtt import vtt_document

CAPTION_MAX_BYTES = 512 * 1024
MAX_CUES = 20_000
LABEL_MAX = 100
VTT_CONTENT_TYPE = "text/vtt"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}$")
_SRT_TIME = r"\d{1,3}:\d{2}:\d{2}[,.]\d{1,3}"
_VTT_TIME = r"(?:\d{1,3}:)?\d{2}:\d{2}\.\d{3}"
_LOOKS_TIMED = re.compile(r"^\s*(?:\d{1,3}:)?\d{1,2}:\d{2}[,.]\d")
_TIMING = {
    "srt": re.compile(rf"^\s*({_SRT_TIME})\s*-->\s*({_SRT_TIME})(?:\s+.*)?$"),
    "vtt": re.compile(rf"^\s*({_VTT_TIME})\s+-->\s+({_VTT_TIME})(?:\s+.*)?$"),
}


def normalise_language(value: str) -> str:
    """``en``, ``pt-br``, ``zh-hant``: a lower-case BCP 47-like tag, else 422."""
    tag = value.strip().lower().replace("_", "-")
    if not _LANGUAGE.match(tag):
        raise UnprocessableEntity(
            "The language must be a language tag such as en, fr or pt-BR.",
            code="invalid_language",
        )
    return tag


def clean_label(value: str | None, fallback: str) -> str:
    text = " ".join((value or "").split())
    text = "".join(ch for ch in text if ch.isprintable() and ch not in '"<>&\\')
    return text[:LABEL_MAX].strip() or fallback


@dataclass(frozen=True)
class ParsedCaption:
    vtt: str
    cues: int


def _invalid(message: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, code="invalid_caption")


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def parse_caption(data: bytes) -> ParsedCaption:
    """SRT or WebVTT bytes -> our WebVTT; 422 ``invalid_caption`` naming the line."""
    if len(data) > CAPTION_MAX_BYTES:
        raise PayloadTooLarge(
            f"A caption file may be at most {CAPTION_MAX_BYTES // 1024} KiB.",
            code="caption_too_large",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = data[: exc.start].count(b"\n") + 1
        raise _invalid(f"Line {at}: the file is not UTF-8 text.") from None
    if "\x00" in text:
        at = text[: text.index("\x00")].count("\n") + 1
        raise _invalid(f"Line {at}: the file contains a NUL byte.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    head = text.lstrip()
    if not head:
        raise _invalid("The file is empty.")
    if head.startswith("[Script Info]"):
        raise _invalid("Line 1: only SubRip (.srt) and WebVTT (.vtt) files are accepted.")
    fmt = "vtt" if head.startswith("WEBVTT") else "srt"
    timing = _TIMING[fmt]
    for number, line in enumerate(text.split("\n"), start=1):
        # A line that starts like a timing must be one: pysubs2 would take "->" too.
        if "-->" not in line and not _LOOKS_TIMED.match(line):
            continue
        match = timing.match(line)
        if match is None:
            raise _invalid(f"Line {number}: {line.strip()[:80]!r} is not a valid cue timing.")
        if _seconds(match.group(2)) < _seconds(match.group(1)):
            raise _invalid(f"Line {number}: the cue ends before it starts.")
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as exc:  # pysubs2 raises several unrelated types for bad input
        raise _invalid(f"The file could not be read: {str(exc)[:200]}") from None
    events = [e for e in subs if not e.is_comment and e.plaintext.strip()]
    if not events:
        raise _invalid("The file has no cues.")
    if len(events) > MAX_CUES:
        raise _invalid(f"The file has more than {MAX_CUES} cues.")

    def plain(event: pysubs2.SSAEvent) -> str:
        # pysubs2 keeps WebVTT's character references as written; SRT has none.
        return html.unescape(event.plaintext) if fmt == "vtt" else event.plaintext

    vtt = vtt_document((e.start / 1000, e.end / 1000, plain(e)) for e in events)
    return ParsedCaption(vtt=vtt, cues=len(events))


async def list_uploaded(session: AsyncSession, video_id: uuid.UUID) -> list[GalleryCaption]:
    rows = await session.execute(
        select(GalleryCaption)
        .where(GalleryCaption.video_id == video_id)
        .order_by(GalleryCaption.language)
    )
    return list(rows.scalars())


async def put_caption(
    session: AsyncSession,
    storage: Storage,
    video: GalleryVideo,
    language: str,
    label: str | None,
    data: bytes,
) -> tuple[GalleryCaption, list[int]]:
    """Store (or replace) the owner's caption for ``language`` (caller checked the owner);
    returns it and the deletion of the file it replaced, scheduled (outbox) for the
    caller to carry out after the commit. Each upload has a key of its own."""
    parsed = parse_caption(data)
    key = new_caption_key(video.id, language)
    body = parsed.vtt.encode()
    # The object first: if the commit then fails, the key is simply overwritten next
    # time (and removed with the video's prefix); a row never points at nothing.
    await storage.put_bytes(key, body, content_type=VTT_CONTENT_TYPE)
    caption = await session.get(
        GalleryCaption, (video.id, language), populate_existing=True, with_for_update=True
    )
    replaced: list[str] = []
    if caption is None:
        caption = GalleryCaption(video_id=video.id, language=language)
        session.add(caption)
    elif caption.key != key:
        replaced.append(caption.key)
    caption.label = clean_label(label, language)
    caption.key = key
    caption.size = len(body)
    caption.cues = parsed.cues
    await session.flush()
    pending = await deletions.schedule(session, reason="caption_replaced", keys=replaced)
    return caption, pending


async def delete_caption(session: AsyncSession, video: GalleryVideo, language: str) -> list[int]:
    """Remove the row and schedule the object's delete (outbox); 404 when absent."""
    caption = await session.get(GalleryCaption, (video.id, language))
    if caption is None:
        raise NotFound("No caption in this language.", code="caption_not_found")
    key = caption.key
    await session.execute(
        delete(GalleryCaption).where(
            GalleryCaption.video_id == video.id, GalleryCaption.language == language
        )
    )
    return await deletions.schedule(session, reason="caption_deleted", keys=[key])


async def caption_tracks(
    video: GalleryVideo,
    uploaded: list[GalleryCaption],
    storage: Storage,
    ttl: int,
) -> list[CaptionRead]:
    """Every text track of the video: the extracted ones, then the owner's uploads.

    An upload in the language of an extracted track replaces it (the owner's correction
    wins). URLs are signed for ``ttl`` seconds.
    """
    replaced = {c.language for c in uploaded}
    tracks: list[CaptionRead] = []
    for track in (video.media or {}).get("subtitles") or []:
        language = track.get("language")
        if language in replaced:
            continue
        tracks.append(
            CaptionRead(
                language=language,
                label=str(track.get("label") or language or "Subtitles"),
                source=CaptionSource.EXTRACTED,
                default=bool(track.get("default")),
                forced=bool(track.get("forced")),
                url=await storage.presign_get(str(track["vtt_key"]), expires_in=ttl),
            )
        )
    for caption in uploaded:
        tracks.append(
            CaptionRead(
                language=caption.language,
                label=caption.label,
                source=CaptionSource.UPLOADED,
                url=await storage.presign_get(caption.key, expires_in=ttl),
                cues=caption.cues,
            )
        )
    return tracks

"""The tracks of a source besides its picture: audio, subtitles and chapters, from ffprobe.

Everything here is read from a stranger's file, so every name that ends up in a playlist,
a manifest or a WebVTT file is cleaned first (:func:`clean_label`, :func:`clean_language`):
no quotes, no line breaks, no control characters, bounded length. A language that is
not a plausible BCP 47 / ISO 639 tag is dropped rather than passed on.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

#: Text subtitle codecs we decode (ffmpeg decoder names as ffprobe reports them). Every
#: other subtitle codec is either a picture (PGS, DVB, VobSub) or something we do not
#: trust a decoder with; those tracks are skipped and noted in the metadata document.
TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt"})
#: Picture-based subtitle codecs: skipped with an explanation (there is no text to keep).
IMAGE_SUBTITLE_CODECS = frozenset(
    {"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub", "dvb_teletext"}
)

LABEL_MAX = 100
CHAPTERS_MAX = 500
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8}){0,3}$")


def clean_label(value: Any, limit: int = LABEL_MAX) -> str | None:
    """A title safe inside a quoted HLS attribute, an XML attribute and a WebVTT cue."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value))
    kept = "".join(
        " " if ch in "\r\n\t" else ch
        for ch in text
        if ch not in "\"'<>&\\" and (ch in "\r\n\t" or unicodedata.category(ch)[0] != "C")
    )
    kept = " ".join(kept.split())[:limit].strip()
    return kept or None


# ISO 639-2 (bibliographic and terminology) codes of common languages -> ISO 639-1.
# Containers carry three letters (Matroska, MP4); BCP 47 wants the shortest code, and
# players and owners (captions) say "en", not "eng".
_CODES = (
    "eng=en fre=fr fra=fr ger=de deu=de spa=es ita=it por=pt dut=nl nld=nl rus=ru "
    "jpn=ja chi=zh zho=zh kor=ko ara=ar hin=hi ben=bn pol=pl tur=tr swe=sv nor=no "
    "nob=nb nno=nn dan=da fin=fi cze=cs ces=cs slo=sk slk=sk hun=hu rum=ro ron=ro "
    "gre=el ell=el heb=he ukr=uk bul=bg hrv=hr srp=sr slv=sl cat=ca baq=eu eus=eu "
    "glg=gl vie=vi tha=th ind=id may=ms msa=ms per=fa fas=fa urd=ur tam=ta tel=te "
    "est=et lav=lv lit=lt ice=is isl=is wel=cy cym=cy gle=ga"
)
_TWO_LETTER = {code: short for code, _, short in (p.partition("=") for p in _CODES.split(" "))}


def clean_language(value: Any) -> str | None:
    """A lower-case language tag (``en``, ``pt-br``; ``eng`` becomes ``en``), or None
    (``und`` included)."""
    if value is None:
        return None
    tag = str(value).strip().lower().replace("_", "-")
    if tag in ("", "und", "unk", "zxx", "mis", "mul") or not _LANGUAGE.match(tag):
        return None
    primary, _, rest = tag.partition("-")
    primary = _TWO_LETTER.get(primary, primary)
    return f"{primary}-{rest}" if rest else primary


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of the source; ``index`` is its position among the audio streams
    (``0:a:{index}`` for ffmpeg)."""

    index: int
    codec: str
    language: str | None
    title: str | None
    default: bool
    channels: int


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle stream of the source; ``index`` is ``0:s:{index}`` for ffmpeg."""

    index: int
    codec: str
    language: str | None
    title: str | None
    default: bool
    forced: bool

    @property
    def is_text(self) -> bool:
        return self.codec in TEXT_SUBTITLE_CODECS


@dataclass(frozen=True)
class Chapter:
    start: float  # seconds
    end: float
    title: str


def _tags(stream: dict[str, Any]) -> dict[str, Any]:
    # Tag names differ in case between containers (TITLE in Matroska, title in MP4).
    return {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}


def audio_tracks(streams: list[dict[str, Any]]) -> tuple[AudioTrack, ...]:
    """Every audio stream, in order; exactly one is ``default`` (the first if none is)."""
    found = [s for s in streams if s.get("codec_type") == "audio"]
    tracks = []
    for i, stream in enumerate(found):
        tags = _tags(stream)
        tracks.append(
            AudioTrack(
                index=i,
                codec=str(stream.get("codec_name") or "unknown"),
                language=clean_language(tags.get("language")),
                title=clean_label(tags.get("title")),
                default=bool((stream.get("disposition") or {}).get("default")),
                channels=int(stream.get("channels") or 0),
            )
        )
    defaults = [t for t in tracks if t.default]
    chosen = defaults[0].index if defaults else 0
    return tuple(replace(t, default=t.index == chosen) for t in tracks)


def subtitle_tracks(streams: list[dict[str, Any]]) -> tuple[SubtitleTrack, ...]:
    found = [s for s in streams if s.get("codec_type") == "subtitle"]
    tracks = []
    for i, stream in enumerate(found):
        tags = _tags(stream)
        disposition = stream.get("disposition") or {}
        tracks.append(
            SubtitleTrack(
                index=i,
                codec=str(stream.get("codec_name") or "unknown"),
                language=clean_language(tags.get("language")),
                title=clean_label(tags.get("title")),
                default=bool(disposition.get("default")),
                forced=bool(disposition.get("forced")),
            )
        )
    return tuple(tracks)


def _seconds(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def container_chapters(raw: list[dict[str, Any]], duration: float) -> tuple[Chapter, ...]:
    """The container's chapters, ordered, clipped to the duration, without empty ones.

    Untitled chapters are named by their number, as players show them.
    """
    chapters: list[Chapter] = []
    for entry in raw[:CHAPTERS_MAX]:
        start, end = _seconds(entry.get("start_time")), _seconds(entry.get("end_time"))
        if start is None or end is None:
            continue
        start, end = min(start, duration), min(end, duration)
        if end - start < 0.001:
            continue
        title = clean_label(_tags(entry).get("title")) or f"Chapter {len(chapters) + 1}"
        chapters.append(Chapter(round(start, 3), round(end, 3), title))
    chapters.sort(key=lambda c: c.start)
    # Overlaps (a broken or hostile table) are cut at the next chapter's start; a
    # chapter starting where the next one starts too is dropped.
    kept: list[Chapter] = []
    for i, chapter in enumerate(chapters):
        following = chapters[i + 1].start if i + 1 < len(chapters) else None
        if following is None:
            kept.append(chapter)
        elif following > chapter.start:
            kept.append(Chapter(chapter.start, min(chapter.end, following), chapter.title))
    return tuple(kept)

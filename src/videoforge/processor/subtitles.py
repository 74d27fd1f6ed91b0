"""Text subtitle tracks of the source, extracted to WebVTT, one single-segment HLS playlist each.

Only the text codecs of :data:`~tracks.TEXT_SUBTITLE_CODECS` are ever mapped, so no
other subtitle decoder is opened; picture tracks (PGS, DVB, VobSub) are skipped with a
note. The run maps subtitle streams only (``-vn -an -dn``; attachments such as fonts
are never mapped), keeps the input guards of every other call and never reads a
character set or anything else from a file. A track that fails to convert, or comes out
empty or too large, is dropped with a note: subtitles are never the reason a job fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.tracks import IMAGE_SUBTITLE_CODECS, TEXT_SUBTITLE_CODECS, SubtitleTrack

SUBTITLES_DIR = "hls/subtitles"
#: The only decoders the subtitle run may open (ffmpeg's decoder names for the text
#: codecs): not the picture's, the audio's or a picture subtitle's, even while probing.
SUBTITLE_DECODERS = tuple(sorted(TEXT_SUBTITLE_CODECS))


@dataclass(frozen=True)
class SubtitleRendition:
    """One extracted text track."""

    track: SubtitleTrack

    @property
    def name(self) -> str:
        return f"s{self.track.index}"

    @property
    def vtt_key(self) -> str:
        return f"{SUBTITLES_DIR}/{self.name}.vtt"

    @property
    def playlist_key(self) -> str:
        return f"{SUBTITLES_DIR}/{self.name}.m3u8"

    @property
    def label(self) -> str:
        return self.track.title or self.track.language or f"Subtitles {self.track.index + 1}"


def plan_subtitles(
    tracks: tuple[SubtitleTrack, ...], config: ProcessingConfig
) -> tuple[list[SubtitleRendition], list[dict[str, object]]]:
    """The tracks to extract, and a note for each one that is not."""
    planned: list[SubtitleRendition] = []
    notes: list[dict[str, object]] = []
    for track in tracks:
        if not track.is_text:
            reason = (
                "image-based subtitles cannot be converted to text"
                if track.codec in IMAGE_SUBTITLE_CODECS
                else "unsupported subtitle format"
            )
            notes.append(_note(track, "skipped", reason))
        elif len(planned) >= config.max_subtitle_tracks:
            notes.append(_note(track, "skipped", "too many subtitle tracks"))
        else:
            planned.append(SubtitleRendition(track))
    return planned, notes


def _note(track: SubtitleTrack, outcome: str, reason: str) -> dict[str, object]:
    return {
        "kind": "subtitle",
        "track": track.index,
        "codec": track.codec,
        "language": track.language,
        "outcome": outcome,
        "reason": reason,
    }


def extract_args(renditions: list[SubtitleRendition]) -> list[str]:
    """Output options converting each planned track to WebVTT (one output each)."""
    args: list[str] = []
    for rendition in renditions:
        args += [
            "-map",
            f"0:s:{rendition.track.index}",
            "-vn",
            "-an",
            "-dn",
            "-map_metadata",
            "-1",
            "-c:s",
            "webvtt",
            "-f",
            "webvtt",
            rendition.vtt_key,
        ]
    return args


def check_extracted(
    outdir: Path, rendition: SubtitleRendition, config: ProcessingConfig
) -> str | None:
    """Why the extracted file cannot be published, or None when it is fine."""
    path = outdir / rendition.vtt_key
    if not path.is_file():
        return "the track could not be converted"
    size = path.stat().st_size
    if size > config.max_subtitle_bytes:
        return f"the converted track is larger than {config.max_subtitle_bytes} bytes"
    text = path.read_bytes().decode("utf-8", "replace")
    if not text.startswith("WEBVTT") or "-->" not in text:
        return "the track has no cues"
    return None


def dropped(rendition: SubtitleRendition, reason: str) -> dict[str, object]:
    return _note(rendition.track, "dropped", reason)


def subtitle_playlist(rendition: SubtitleRendition, duration: float) -> str:
    """A VOD media playlist whose one segment is the whole WebVTT file."""
    name = Path(rendition.vtt_key).name
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{duration:.3f},",
            name,
            "#EXT-X-ENDLIST",
            "",
        ]
    )

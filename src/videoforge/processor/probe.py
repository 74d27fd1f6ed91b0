"""Probe a source with ffprobe and refuse what must not be transcoded.

The probe runs with the same guards as every other call (see :mod:`ffmpeg`), so a
playlist disguised as a video fails here, as ``unsupported_format``, before anything
outside the job directory is opened. :func:`probe_file` returns the display geometry
(after rotation and sample aspect ratio), frame rate, codecs, audio presence and stream
count, every audio and subtitle track and the container's chapters (see :mod:`tracks`),
and raises :class:`MediaRejected` for bombs: too many pixels, too long, too many
streams, absurd frame rates, empty, truncated or unidentifiable files.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from videoforge.messages import MEDIA_FACTS
from videoforge.processor import ffmpeg, runner
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, MediaRejected, Tool
from videoforge.processor.tracks import (
    AudioTrack,
    Chapter,
    SubtitleTrack,
    audio_tracks,
    container_chapters,
    subtitle_tracks,
)


@dataclass(frozen=True)
class ProbeResult:
    """What the pipeline needs to know about a source before it decodes it."""

    format_name: str
    duration: float  # seconds
    size: int  # bytes
    bit_rate: int | None  # bits/s of the whole file
    width: int  # display width: after rotation and sample aspect ratio
    height: int  # display height
    coded_width: int
    coded_height: int
    rotation: int  # degrees clockwise the picture is turned for display (0/90/180/270)
    fps: float
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    stream_count: int
    audio_tracks: tuple[AudioTrack, ...] = ()
    subtitle_tracks: tuple[SubtitleTrack, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    # What the remux decision (remux.py) needs to know of the video stream.
    video_profile: str | None = None  # "High", "Main", "Constrained Baseline"...
    pix_fmt: str | None = None
    field_order: str | None = None  # "progressive", "tt", ... (None: not reported)
    video_bit_rate: int | None = None  # bits/s of the video stream, when the container says

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for ``metadata.json``)."""
        return asdict(self)

    def facts(self) -> dict[str, Any]:
        """The media facts of a ``COMPLETED`` event (:data:`~videoforge.messages.MEDIA_FACTS`)."""
        facts = {
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "file_size": self.size,
        }
        assert tuple(facts) == MEDIA_FACTS
        return facts


# Fragments of ffprobe's error output and what they mean for the user.
_STDERR_CODES: tuple[tuple[str, str, str], ...] = (
    ("not on whitelist", "unsupported_format", "This file type is not a supported video."),
    ("exceeds max_streams", "too_many_streams", "The file has too many streams."),
    ("max pixel count", "resolution_too_large", "The video's resolution is too large."),
    ("moov atom not found", "corrupt_media", "The file is incomplete or damaged."),
    ("partial file", "corrupt_media", "The file is incomplete or damaged."),
    ("invalid data found", "unsupported_format", "This file is not a recognisable video."),
)


def classify_stderr(stderr: str, default: str = "corrupt_media") -> MediaRejected:
    """Map an ffmpeg/ffprobe error tail onto a stable rejection code."""
    lowered = stderr.lower()
    for fragment, code, message in _STDERR_CODES:
        if fragment in lowered:
            return MediaRejected(code, message)
    return MediaRejected(default, "The file could not be read as a video.")


def _fraction(value: Any) -> float:
    try:
        frac = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(frac) if frac > 0 else 0.0


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation from the display matrix (or the legacy ``rotate`` tag)."""
    degrees: float | None = None
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            degrees = _number(side["rotation"])
            break
    if degrees is None:
        degrees = _number((stream.get("tags") or {}).get("rotate"))
    if degrees is None:
        return 0
    # ffprobe reports the display matrix's counter-clockwise angle (-90 means turn 90°
    # clockwise); the legacy tag already is clockwise. Either way only the parity of the
    # quarter turn matters for geometry.
    return round(degrees / 90.0) % 4 * 90


def _display_size(stream: dict[str, Any], rotation: int) -> tuple[int, int]:
    width = int(stream.get("width") or 0)
    height = int(stream.get("height") or 0)
    num, _, den = str(stream.get("sample_aspect_ratio") or "1:1").partition(":")
    sar = _fraction(f"{num}/{den}") if den not in ("", "0") else 0.0  # 0:1 means unknown
    if sar > 0 and abs(sar - 1.0) > 1e-3:
        # Non-square pixels: stretch the width, as players do.
        width = round(width * sar)
    if rotation in (90, 270):
        width, height = height, width
    return width, height


async def probe_file(
    source: Path,
    config: ProcessingConfig,
    *,
    cwd: Path | None = None,
    cancel: asyncio.Event | None = None,
) -> ProbeResult:
    """Probe ``source`` and check it against the limits in ``config``."""
    try:
        size = (await asyncio.to_thread(source.stat)).st_size
    except FileNotFoundError:
        raise MediaRejected("empty_file", "The source file does not exist.") from None
    if size == 0:
        raise MediaRejected("empty_file", "The file is empty.")
    if size > config.max_input_bytes:
        raise MediaRejected(
            "file_too_large", f"The file is larger than {config.max_input_bytes} bytes."
        )
    argv = ffmpeg.build_argv(
        config,
        Tool.FFPROBE,
        inputs=[MediaInput(source)],
        args=["-print_format", "json", "-show_format", "-show_streams", "-show_chapters"],
    )
    result = await runner.run_tool(
        argv,
        cwd=cwd or source.parent,
        time_limit=config.probe_timeout,
        config=config,
        cancel=cancel,
    )
    if result.returncode != 0:
        raise classify_stderr(result.stderr_tail, default="unsupported_format")
    try:
        document = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise MediaRejected("corrupt_media", "The file could not be read as a video.") from None
    return check_probe(document, result.stderr_tail, size, config)


def check_probe(
    document: dict[str, Any], stderr: str, size: int, config: ProcessingConfig
) -> ProbeResult:
    """Turn ffprobe's JSON into a :class:`ProbeResult`, enforcing every limit."""
    fmt = document.get("format") or {}
    streams: list[dict[str, Any]] = list(document.get("streams") or [])
    if not fmt or not streams:
        raise classify_stderr(stderr, default="unsupported_format")
    if len(streams) > config.max_streams:
        raise MediaRejected(
            "too_many_streams",
            f"The file has {len(streams)} streams; at most {config.max_streams} are allowed.",
        )
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video"
        # Cover art is stored as a one-picture "video" stream; it is not the video.
        and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        raise MediaRejected("no_video_stream", "The file has no video stream.")
    video = videos[0]
    if "max pixel count" in stderr.lower():
        raise MediaRejected("resolution_too_large", "The video's resolution is too large.")
    rotation = _rotation(video)
    width, height = _display_size(video, rotation)
    if width <= 0 or height <= 0:
        raise classify_stderr(stderr, default="corrupt_media")
    pixels = int(video.get("width") or 0) * int(video.get("height") or 0)
    if max(pixels, width * height) > config.max_pixels:
        raise MediaRejected(
            "resolution_too_large",
            f"The video is {width}x{height}; at most {config.max_pixels} pixels are allowed.",
        )
    fps = _fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate"))
    if fps > config.max_probe_fps:
        raise MediaRejected(
            "frame_rate_too_high", f"The frame rate ({fps:.0f} fps) is not plausible."
        )
    if fps <= 0:
        fps = 25.0  # unknown (variable-rate streams without a hint): assume the common rate
    duration = _number(fmt.get("duration")) or _number(video.get("duration")) or 0.0
    if duration <= 0:
        raise MediaRejected("corrupt_media", "The video's duration could not be determined.")
    if duration > config.max_duration:
        raise MediaRejected(
            "duration_too_long",
            f"The video lasts {duration:.0f} s; at most {config.max_duration:.0f} s are allowed.",
        )
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    bit_rate = _number(fmt.get("bit_rate"))
    video_bit_rate = _number(video.get("bit_rate"))
    return ProbeResult(
        format_name=str(fmt.get("format_name") or ""),
        duration=duration,
        size=size,
        bit_rate=int(bit_rate) if bit_rate else None,
        width=width,
        height=height,
        coded_width=int(video.get("width") or 0),
        coded_height=int(video.get("height") or 0),
        rotation=rotation,
        fps=fps,
        video_codec=str(video.get("codec_name") or "unknown"),
        audio_codec=str(audios[0].get("codec_name")) if audios else None,
        has_audio=bool(audios),
        stream_count=len(streams),
        audio_tracks=audio_tracks(streams),
        subtitle_tracks=subtitle_tracks(streams),
        chapters=container_chapters(list(document.get("chapters") or []), duration),
        video_profile=str(video["profile"]) if video.get("profile") else None,
        pix_fmt=str(video["pix_fmt"]) if video.get("pix_fmt") else None,
        field_order=str(video["field_order"]) if video.get("field_order") else None,
        video_bit_rate=int(video_bit_rate) if video_bit_rate else None,
    )

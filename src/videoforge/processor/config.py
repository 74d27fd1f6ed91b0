"""Knobs of the media pipeline: limits for hostile input and the encoding ladder.

Everything the pipeline decides is read from one frozen :class:`ProcessingConfig`, so a
test (or an operator) can tighten a limit without touching code. ``from_settings`` maps
the service settings onto it; the rest keeps sensible defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from videoforge.settings import Settings


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: a bounding box plus the rate control that goes with it.

    ``long``/``short`` describe the box in landscape terms (1920x1080 for 1080p); a
    portrait source uses the same box turned on its side, so it keeps its orientation.
    """

    name: str
    long: int
    short: int
    max_bitrate: int  # bits/s: -maxrate; -bufsize is twice this
    crf: int  # capped CRF: quality target, bounded by max_bitrate
    max_fps: float = 60.0
    profile: str = "high"


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung("2160p", 3840, 2160, 16_000_000, 21),
    Rung("1080p", 1920, 1080, 6_000_000, 22),
    Rung("720p", 1280, 720, 3_000_000, 23),
    Rung("480p", 854, 480, 1_400_000, 24),
    # The mobile rung trades quality for reach: lower bitrate, 30 fps, Main profile.
    Rung("mobile", 640, 360, 700_000, 26, max_fps=30.0, profile="main"),
)

# Real video containers only, by ffmpeg demuxer name. A demuxer whose name list shares
# one entry with this list is allowed (``mov`` admits ``mov,mp4,m4a,3gp,3g2,mj2``).
# Deliberately absent: hls, dash, concat, image2*, lavfi, subtitle and playlist
# demuxers, raw elementary streams, and anything that can open a second resource.
DEFAULT_FORMATS: tuple[str, ...] = (
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "matroska",
    "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "ogg",
    "asf",
    "mxf",
    "nut",
)


@dataclass(frozen=True)
class ProcessingConfig:
    """Every limit and encoder setting of the media pipeline."""

    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    threads: int = 0  # 0 lets ffmpeg choose
    preset: str = "veryfast"
    gop_seconds: float = 2.0
    max_fps: float = 60.0
    audio_bitrate: int = 128_000
    audio_channels: int = 2
    # Loudness (EBU R128): measured on every track, normalised unless switched off.
    loudness_normalization: bool = True
    loudness_target: float = -14.0  # LUFS, integrated
    loudness_true_peak: float = -1.0  # dBTP
    # Subtitles: text tracks kept (as WebVTT) at most, and the size of one extracted file.
    max_subtitle_tracks: int = 8
    max_subtitle_bytes: int = 4 * 1024 * 1024
    # Storyboard: one tile every 2-10 s (more on very long videos), at most this many sheets.
    storyboard_tile_width: int = 160
    storyboard_columns: int = 10
    storyboard_rows: int = 10
    storyboard_min_interval: float = 2.0
    storyboard_max_interval: float = 10.0
    storyboard_max_sheets: int = 5
    # Hostile-input limits, checked on the probe before anything is decoded.
    max_pixels: int = 4096 * 2304
    max_duration: float = 4 * 3600.0
    max_streams: int = 16
    max_input_bytes: int = 20 * 1024**3
    max_probe_fps: float = 240.0  # above this the stream is treated as absurd
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS
    probe_timeout: float = 60.0
    probe_size: int = 50_000_000  # bytes ffprobe may read to identify streams
    # Transcoding limits.
    transcode_timeout: float = 3600.0
    max_output_bytes: int = 40 * 1024**3
    hls_segment_seconds: float = 4.0
    # Remux ("quick transcode", remux.py): a compatible H.264 source whose keyframes are at
    # most this many seconds apart is copied as the top rung instead of encoded. 0 turns
    # it off; that is the default here so that a config built by hand (tests, the bench)
    # encodes everything unless asked, while the service's REMUX_MAX_GOP_SECONDS is 4 s.
    remux_max_gop_seconds: float = 0.0
    # Chunked encoding (chunks.py): a video longer than chunk_min_seconds is split into
    # parts of about chunk_seconds, each its own job. 0 (the default here) never splits.
    chunk_min_seconds: float = 0.0
    chunk_seconds: float = 90.0
    # Lower rungs scale the rung above them instead of the full-size source (ladder.py's
    # cascade); docs/benchmarks.md has the cost and SSIM figures behind the default.
    cascade_scaling: bool = False
    # Run the stills beside the ladder when it leaves a core idle (stills.py's
    # stills_can_overlap); off in a config built by hand, on in the service's.
    overlap_stills: bool = False
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    # Thumbnail and animated preview.
    thumbnail_width: int = 640
    preview_width: int = 320
    preview_fps: int = 10
    preview_seconds: float = 3.0
    stderr_tail_bytes: int = 8192
    progress_interval: float = 1.0  # seconds between ffmpeg progress reports
    # Seconds between SIGTERM and SIGKILL. Short: a stopped run's outputs are discarded,
    # so there is nothing worth letting ffmpeg finish writing.
    kill_grace: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProcessingConfig:
        """Build the config from service settings (``FFMPEG_*``, ``TRANSCODE_TIMEOUT``...)."""
        base = cls(
            ffmpeg_path=settings.ffmpeg_path,
            ffprobe_path=settings.ffprobe_path,
            threads=settings.ffmpeg_threads,
            transcode_timeout=float(settings.transcode_timeout),
            loudness_target=settings.loudness_target,
            loudness_true_peak=settings.loudness_true_peak,
            remux_max_gop_seconds=settings.remux_max_gop_seconds,
            chunk_min_seconds=settings.chunk_min_seconds,
            chunk_seconds=settings.chunk_seconds,
            overlap_stills=True,
            # A source can only be as large as what uploads and imports let in.
            max_input_bytes=max(settings.upload_max_bytes, settings.import_max_bytes),
        )
        return replace(base, **overrides) if overrides else base

    def with_overrides(self, **overrides: Any) -> ProcessingConfig:
        """A copy with some knobs changed (used by tests and the benchmark)."""
        return replace(self, **overrides)

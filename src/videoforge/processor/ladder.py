"""Plan the encoding ladder for a source: a pure function of its geometry and frame rate.

Each rung is a bounding box (1920x1080 for 1080p, turned upright for portrait sources).
A rung is used when the source reaches its box in at least one dimension, so nothing is
upscaled and a portrait 1080x1920 source gets 1080x1920, 720x1280, ...; the picture is
scaled to fit the box with its aspect ratio kept. A source smaller than every box gets a
single rendition at its own size. Dimensions are even (4:2:0 chroma needs it) and the
frame rate is capped by an integer divisor, so motion stays regular.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from videoforge.processor.config import Rung

SOURCE_QUALITY = "source"


@dataclass(frozen=True)
class PlannedRendition:
    """One output of the ladder with everything the encoder needs."""

    quality: str  # "1080p", "720p", ..., "mobile" or "source"
    width: int
    height: int
    fps: float
    crf: int
    max_bitrate: int  # bits/s
    bufsize: int  # bits
    profile: str
    # Where this rung's pictures come from: None scales the decoded source; an index
    # scales the frames of that (larger) rung of the same ladder, a cascade (see
    # plan_ladder's ``cascade``).
    scale_from: int | None = None
    # The source's own video packets, copied (remux.py decided): no decode, no encode.
    copy: bool = False

    @property
    def hls_dir(self) -> str:
        return f"hls/{self.quality}"

    @property
    def playlist_key(self) -> str:
        return f"{self.hls_dir}/index.m3u8"

    @property
    def init_key(self) -> str:
        return f"{self.hls_dir}/init.mp4"

    @property
    def mp4_key(self) -> str:
        return f"mp4/{self.quality}.mp4"


def _even_floor(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_round(value: float, ceiling: int) -> int:
    return min(max(2, round(value / 2) * 2), _even_floor(ceiling))


def capped_fps(source_fps: float, cap: float) -> float:
    """The source rate, or the source rate divided by the smallest integer that fits ``cap``."""
    if source_fps <= 0:
        return min(25.0, cap)
    if source_fps <= cap + 1e-6:
        return source_fps
    return source_fps / math.ceil(source_fps / cap - 1e-9)


def plan_ladder(
    width: int,
    height: int,
    fps: float,
    rungs: Sequence[Rung],
    *,
    max_fps: float = 60.0,
    cascade: bool = False,
) -> list[PlannedRendition]:
    """The renditions to produce for a ``width`` x ``height`` (display size) source.

    Ordered from the largest to the smallest; never empty for a positive size. With
    ``cascade`` each rung scales the frames of the rung above it (``scale_from``) instead
    of the full-size source, when that rung runs at the source's frame rate or at its
    own rate divided by an integer (so the frames taken are the ones the source would give).
    """
    if width <= 0 or height <= 0:
        raise ValueError("the source must have a positive size")
    long_side, short_side = max(width, height), min(width, height)
    landscape = width >= height
    planned: list[PlannedRendition] = []
    seen: set[tuple[int, int]] = set()
    for rung in sorted(rungs, key=lambda r: r.long * r.short, reverse=True):
        scale = min(rung.long / long_side, rung.short / short_side)
        if scale > 1.0:
            continue  # the source does not reach this box: we never upscale
        new_long = _even_round(long_side * scale, long_side)
        new_short = _even_round(short_side * scale, short_side)
        size = (new_long, new_short) if landscape else (new_short, new_long)
        if size in seen:
            continue
        seen.add(size)
        planned.append(_rendition(rung.name, size, fps, rung, max_fps))
    if not planned:
        smallest = min(rungs, key=lambda r: r.long * r.short)
        size = (_even_floor(width), _even_floor(height))
        planned.append(_rendition(SOURCE_QUALITY, size, fps, smallest, max_fps))
    if cascade:
        planned = [
            replace(r, scale_from=i - 1) if i and _nests(planned[i - 1].fps, r.fps) else r
            for i, r in enumerate(planned)
        ]
    return planned


def _nests(upper_fps: float, fps: float) -> bool:
    # Every rate is the source's divided by an integer; the lower one can be taken from
    # the upper one's frames when it divides it too (60 -> 30, not 50 -> 30).
    ratio = upper_fps / fps
    return abs(ratio - round(ratio)) < 1e-3


def _rendition(
    quality: str, size: tuple[int, int], fps: float, rung: Rung, max_fps: float
) -> PlannedRendition:
    return PlannedRendition(
        quality=quality,
        width=size[0],
        height=size[1],
        fps=round(capped_fps(fps, min(max_fps, rung.max_fps)), 3),
        crf=rung.crf,
        max_bitrate=rung.max_bitrate,
        bufsize=rung.max_bitrate * 2,
        profile=rung.profile,
    )

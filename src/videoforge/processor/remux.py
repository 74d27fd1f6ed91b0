"""Do not re-encode what is already right (PeerTube's "quick transcode").

When the source's video is already what the top rung would be - H.264 (High, Main or
Constrained Baseline), 8-bit 4:2:0, progressive, square pixels, not rotated, at the top
rung's size and frame rate, within its bitrate, with keyframes at most
``remux_max_gop_seconds`` apart - the ladder copies its packets (``-c:v copy``) as the top
rung instead of decoding and encoding them again. The lower rungs are still encoded, with
their keyframes forced at the source's keyframe times and no others, so every rung's HLS
segmenter cuts at the same keyframes and a player can switch rungs at any segment.

The decision is a pure function, :func:`decide_remux` (probe facts + the planned top rung
+ the limits -> remux or not, with the reason); it needs the source's keyframe times,
which the first probe does not read. :func:`keyframe_scan_args` is the second, bounded
ffprobe run (packets of the first video stream only, demuxed, never decoded) that is
made only when everything else already allows a remux, and :func:`parse_keyframe_scan`
reads its output.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.probe import ProbeResult

# ffprobe spells profiles this way; plain "Baseline" may use features (FMO, ASO) that many
# players lack, and High 10 / 4:2:2 / 4:4:4 are not 8-bit 4:2:0.
REMUX_PROFILES = frozenset({"High", "Main", "Constrained Baseline"})
REMUX_PIX_FMTS = frozenset({"yuv420p"})
# MP4/MOV only: their H.264 is stored as the outputs store it (length-prefixed, avcC),
# so the copy is the very same packets, and with their edit lists the video starts at
# the file's start, on the timeline the encoded rungs get. Tried and left out: MPEG-TS
# (Annex B, and the audio starts first: the copy and the encoded rungs then disagree
# on where the first frame is) and Matroska (no edit lists: the video typically starts
# a few ms after the audio); both are encoded.
REMUX_CONTAINERS = frozenset({"mov", "mp4"})
# One argv entry may be at most 128 KiB on Linux (MAX_ARG_STRLEN); stay well below.
MAX_KEYFRAME_LIST_CHARS = 96 * 1024


class RemuxReason(StrEnum):
    """Why the top rung is (``COMPATIBLE``) or is not copied."""

    COMPATIBLE = "compatible"
    DISABLED = "disabled"
    CONTAINER = "container"
    CODEC = "codec"
    PROFILE = "profile"
    PIXEL_FORMAT = "pixel_format"
    INTERLACED = "interlaced"
    GEOMETRY = "geometry"  # rotated, non-square pixels, or not the top rung's size
    FRAME_RATE = "frame_rate"
    BITRATE = "bitrate"
    UNSCANNED = "unscanned"  # everything else allows it: the keyframes must be read
    SCAN_FAILED = "scan_failed"
    KEYFRAMES = "keyframes"  # too far apart, not at the start, or too many to list


@dataclass(frozen=True)
class KeyframeScan:
    """What the packet scan of the source's video stream found."""

    keyframes: tuple[float, ...]  # seconds on the output timeline (0 = the file's start)
    duration: float  # seconds from the file's start to the end of the last packet
    average_bit_rate: int  # bits/s over the whole stream
    gop_bits: tuple[int, ...] = ()  # bits from each keyframe to the next (or the end)

    @property
    def intervals(self) -> list[float]:
        """Seconds from each keyframe to the next, the last one to the end included."""
        points = [*self.keyframes, max(self.duration, self.keyframes[-1] if self.keyframes else 0)]
        return [b - a for a, b in itertools.pairwise(points)]

    @property
    def max_interval(self) -> float:
        """The longest stretch without a keyframe."""
        return max(self.intervals, default=0.0) if self.keyframes else float("inf")

    @property
    def peak_bit_rate(self) -> int:
        """Bits/s of the densest keyframe interval (for the record)."""
        rates = [b / max(t, 1e-3) for b, t in zip(self.gop_bits, self.intervals, strict=False)]
        return round(max(rates, default=0.0))

    def exceeds_vbv(self, max_rate: int, bufsize: int) -> bool:
        """Whether some keyframe interval holds more bits than an encoder capped at
        ``max_rate`` with a ``bufsize`` buffer may spend on it (rate x time + buffer)."""
        return any(
            bits > max_rate * seconds + bufsize
            for bits, seconds in zip(self.gop_bits, self.intervals, strict=False)
        )


@dataclass(frozen=True)
class RemuxDecision:
    remux: bool
    reason: RemuxReason
    detail: str
    keyframes: tuple[float, ...] = ()  # where the lower rungs must put theirs

    def to_dict(self) -> dict[str, object]:
        """For ``metadata.json``: what was decided and why (the times are left out)."""
        return {"remux": self.remux, "reason": str(self.reason), "detail": self.detail}


def _no(reason: RemuxReason, detail: str) -> RemuxDecision:
    return RemuxDecision(False, reason, detail)


def decide_remux(
    probe: ProbeResult,
    top: PlannedRendition,
    max_gop_seconds: float,
    scan: KeyframeScan | None = None,
) -> RemuxDecision:
    """Copy the source's video as ``top`` (the ladder's first rung), or encode it.

    Without ``scan`` the answer is at best :attr:`RemuxReason.UNSCANNED`: the source
    passes every check the probe can make, and the keyframe scan decides.
    """
    if max_gop_seconds <= 0:
        return _no(RemuxReason.DISABLED, "remuxing is turned off")
    if not set(probe.format_name.split(",")) & REMUX_CONTAINERS:
        return _no(RemuxReason.CONTAINER, f"the {probe.format_name} container")
    if probe.video_codec != "h264":
        return _no(RemuxReason.CODEC, f"the video is {probe.video_codec}, not H.264")
    if probe.video_profile not in REMUX_PROFILES:
        return _no(RemuxReason.PROFILE, f"H.264 profile {probe.video_profile or 'unknown'}")
    if probe.pix_fmt not in REMUX_PIX_FMTS:
        return _no(RemuxReason.PIXEL_FORMAT, f"pixel format {probe.pix_fmt or 'unknown'}")
    if probe.field_order != "progressive":
        # Unknown counts as interlaced: the encoded ladder deinterlaces flagged frames.
        return _no(RemuxReason.INTERLACED, f"field order {probe.field_order or 'unknown'}")
    same_size = (probe.coded_width, probe.coded_height) == (top.width, top.height)
    if probe.rotation or (probe.width, probe.height) != (top.width, top.height) or not same_size:
        return _no(
            RemuxReason.GEOMETRY,
            f"the source is {probe.width}x{probe.height} (coded {probe.coded_width}x"
            f"{probe.coded_height}, rotated {probe.rotation}) and the top rung "
            f"{top.width}x{top.height}",
        )
    if abs(top.fps - probe.fps) > 1e-3 * max(1.0, probe.fps):
        return _no(RemuxReason.FRAME_RATE, f"{probe.fps:g} fps, the top rung {top.fps:g}")
    if probe.video_bit_rate is not None and probe.video_bit_rate > top.max_bitrate:
        return _no(
            RemuxReason.BITRATE,
            f"{probe.video_bit_rate} b/s, above the top rung's {top.max_bitrate}",
        )
    if scan is None:
        return _no(RemuxReason.UNSCANNED, "the keyframes have not been read")
    if scan.average_bit_rate > top.max_bitrate or scan.exceeds_vbv(top.max_bitrate, top.bufsize):
        # The top rung's encoder would be held to maxrate through a bufsize buffer; a
        # copied stream is held to the same bounds, so BANDWIDTH stays what it would be.
        return _no(
            RemuxReason.BITRATE,
            f"{scan.average_bit_rate} b/s on average, {scan.peak_bit_rate} in its densest "
            f"keyframe interval; the top rung allows {top.max_bitrate} through a "
            f"{top.bufsize}-bit buffer",
        )
    if not scan.keyframes or scan.keyframes[0] > 0.5 / max(probe.fps, 1.0):
        return _no(RemuxReason.KEYFRAMES, "the video does not start on a keyframe")
    if scan.max_interval > max_gop_seconds + 1e-6:
        return _no(
            RemuxReason.KEYFRAMES,
            f"keyframes up to {scan.max_interval:.2f} s apart (limit {max_gop_seconds:g} s)",
        )
    if len(keyframe_list(scan.keyframes)) > MAX_KEYFRAME_LIST_CHARS:
        return _no(RemuxReason.KEYFRAMES, f"{len(scan.keyframes)} keyframes: too many to list")
    return RemuxDecision(
        True,
        RemuxReason.COMPATIBLE,
        f"H.264 {probe.video_profile} {probe.pix_fmt}, {scan.average_bit_rate} b/s, "
        f"keyframes at most {scan.max_interval:.2f} s apart",
        scan.keyframes,
    )


def keyframe_list(keyframes: Sequence[float]) -> str:
    """The ``-force_key_frames`` value: the times, in seconds, comma-separated.

    ffmpeg forces a keyframe on the first frame at or after each time; a time is written
    to the microsecond, rounded down, so a frame stamped exactly there is the one forced.
    """
    return ",".join(_time(t) for t in keyframes)


def _time(seconds: float) -> str:
    return f"{int(seconds * 1_000_000 + 1e-6) / 1_000_000:.6f}".rstrip("0").rstrip(".")


def keyframe_scan_args() -> list[str]:
    """ffprobe report options: every packet of the first video stream, one CSV line each
    (``packet,pts,dts,duration,size,flags``), and the file's start time last."""
    return [
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,dts_time,duration_time,size,flags:format=start_time",
        "-print_format",
        "csv",
    ]


def parse_keyframe_scan(text: str) -> KeyframeScan | None:
    """Read :func:`keyframe_scan_args`'s output; None when it holds no usable packet."""
    start: float | None = None
    packets: list[tuple[float, float, int, bool]] = []  # time, duration, size, keyframe
    for line in text.splitlines():
        fields = line.strip().split(",")
        if fields[0] == "format" and len(fields) >= 2:
            start = _seconds(fields[1])
            continue
        if fields[0] != "packet" or len(fields) < 6:
            continue
        at = _seconds(fields[1])
        if at is None:
            at = _seconds(fields[2])
        if at is None or not fields[4].isdigit():
            continue
        packets.append((at, _seconds(fields[3]) or 0.0, int(fields[4]), "K" in fields[5]))
    if not packets:
        return None
    origin = start if start is not None else min(p[0] for p in packets)
    first = min(p[0] for p in packets)
    end = max(p[0] + p[1] for p in packets)
    keyframes = sorted({round(p[0] - origin, 6) for p in packets if p[3]})
    # The bits from each keyframe to the next (packets in presentation order).
    starts = [k + origin - 1e-6 for k in keyframes]
    gop_bits = [0] * len(keyframes)
    for at, _, size, _ in packets if keyframes else ():
        # Packets before the first keyframe (a broken start) count towards the first GOP.
        gop_bits[max(0, bisect.bisect_right(starts, at) - 1)] += size * 8
    total_bits = sum(p[2] for p in packets) * 8
    return KeyframeScan(
        keyframes=tuple(keyframes),
        duration=end - origin,
        average_bit_rate=round(total_bits / max(end - first, 1e-3)),
        gop_bits=tuple(gop_bits),
    )


def _seconds(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None

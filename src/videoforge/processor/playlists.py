"""The measured facts of the HLS media playlists the ladder wrote, and the master
playlist over them (video variants with AUDIO and SUBTITLES groups)."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from videoforge.processor.audio import AudioRendition
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.subtitles import SubtitleRendition

MASTER_PLAYLIST = "hls/master.m3u8"
AAC_LC = "mp4a.40.2"
AUDIO_GROUP = "audio"
SUBTITLES_GROUP = "subs"
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")


@dataclass(frozen=True)
class VariantStats:
    """Measured facts of one HLS media playlist (a video rung or an audio rendition)."""

    peak_bandwidth: int
    average_bandwidth: int
    segments: tuple[str, ...]  # rel keys of the media segments, in order
    durations: tuple[float, ...]  # seconds, one per segment
    codecs: str  # of this stream alone
    duration: float  # seconds, the sum of the segment durations


def avc_codec_string(init_or_mp4: Path) -> str:
    """``avc1.PPCCLL`` from the file's avcC box: the profile and level really encoded."""
    data = init_or_mp4.read_bytes()[:1_000_000]
    at = data.find(b"avcC")
    if at < 0 or at + 8 > len(data):
        raise ValueError(f"no avcC box in {init_or_mp4.name}")
    profile, compat, level = data[at + 5], data[at + 6], data[at + 7]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"


def playlist_stats(outdir: Path, playlist_key: str, codecs: str) -> VariantStats:
    """Read a media playlist and its segments; compute peak and average bandwidth."""
    playlist = outdir / playlist_key
    base = playlist.parent
    hls_dir = posixpath.dirname(playlist_key)
    init_size = (base / "init.mp4").stat().st_size
    durations: list[float] = []
    segments: list[str] = []
    pending: float | None = None
    for line in playlist.read_text().splitlines():
        line = line.strip()
        match = _EXTINF.match(line)
        if match:
            pending = float(match.group(1))
        elif line and not line.startswith("#") and pending is not None:
            if "/" in line or ".." in line:
                raise ValueError(f"unexpected segment URI {line!r}")
            durations.append(pending)
            segments.append(f"{hls_dir}/{line}")
            pending = None
    if not segments:
        raise ValueError(f"{playlist_key} lists no segments")
    sizes = [(outdir / key).stat().st_size for key in segments]
    peak = max(
        (size * 8 / max(duration, 0.001) for size, duration in zip(sizes, durations, strict=True)),
        default=0.0,
    )
    average = (sum(sizes) + init_size) * 8 / max(sum(durations), 0.001)
    return VariantStats(
        peak_bandwidth=math.ceil(max(peak, average)),
        average_bandwidth=math.ceil(average),
        segments=tuple(segments),
        durations=tuple(durations),
        codecs=codecs,
        duration=sum(durations),
    )


def variant_stats(outdir: Path, rendition: PlannedRendition) -> VariantStats:
    """The stats of one video rung's playlist (video only: audio is its own rendition)."""
    return playlist_stats(
        outdir, rendition.playlist_key, avc_codec_string(outdir / rendition.init_key)
    )


def audio_stats(outdir: Path, rendition: AudioRendition) -> VariantStats:
    return playlist_stats(outdir, rendition.playlist_key, AAC_LC)


def _quoted(value: str) -> str:
    # Labels are cleaned when probed (no quotes, no line breaks); this is the last fence.
    return '"' + value.replace('"', "'").replace("\n", " ").replace("\r", " ") + '"'


def _unique(labels: Sequence[str]) -> list[str]:
    """NAME must be unique within a group: repeat names get a number."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def master_playlist(
    entries: Sequence[tuple[PlannedRendition, VariantStats]],
    audio: Sequence[tuple[AudioRendition, VariantStats]] = (),
    subtitles: Sequence[SubtitleRendition] = (),
    audio_channels: int = 2,
) -> str:
    """The HLS master playlist; every URI is relative to ``hls/``.

    Audio tracks are one ``TYPE=AUDIO`` group referenced by every variant (``AUDIO=``),
    subtitles one ``TYPE=SUBTITLES`` group (``SUBTITLES=``). A variant's BANDWIDTH and
    CODECS include the largest audio rendition it may be played with.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for (track, _), name in zip(audio, _unique([t.label for t, _ in audio]), strict=True):
        attrs = [
            "TYPE=AUDIO",
            f"GROUP-ID={_quoted(AUDIO_GROUP)}",
            f"NAME={_quoted(name)}",
        ]
        if track.track.language:
            attrs.append(f"LANGUAGE={_quoted(track.track.language)}")
        attrs += [
            f"DEFAULT={'YES' if track.track.default else 'NO'}",
            "AUTOSELECT=YES",
            f"CHANNELS={_quoted(str(audio_channels))}",
            f"URI={_quoted(posixpath.relpath(track.playlist_key, 'hls'))}",
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    for sub, name in zip(subtitles, _unique([s.label for s in subtitles]), strict=True):
        attrs = [
            "TYPE=SUBTITLES",
            f"GROUP-ID={_quoted(SUBTITLES_GROUP)}",
            f"NAME={_quoted(name)}",
        ]
        if sub.track.language:
            attrs.append(f"LANGUAGE={_quoted(sub.track.language)}")
        attrs += [
            f"DEFAULT={'YES' if sub.track.default else 'NO'}",
            # Forced tracks (signs, foreign dialogue) are picked without being asked for.
            f"AUTOSELECT={'YES' if sub.track.forced or sub.track.default else 'NO'}",
            f"FORCED={'YES' if sub.track.forced else 'NO'}",
            f"URI={_quoted(posixpath.relpath(sub.playlist_key, 'hls'))}",
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    audio_peak = max((stats.peak_bandwidth for _, stats in audio), default=0)
    audio_average = max((stats.average_bandwidth for _, stats in audio), default=0)
    for rendition, stats in sorted(entries, key=lambda e: e[1].peak_bandwidth, reverse=True):
        codecs = stats.codecs + (f",{AAC_LC}" if audio else "")
        line = (
            "#EXT-X-STREAM-INF:"
            f"BANDWIDTH={stats.peak_bandwidth + audio_peak},"
            f"AVERAGE-BANDWIDTH={stats.average_bandwidth + audio_average},"
            f"RESOLUTION={rendition.width}x{rendition.height},"
            f"FRAME-RATE={rendition.fps:.3f},"
            f'CODECS="{codecs}"'
        )
        if audio:
            line += f",AUDIO={_quoted(AUDIO_GROUP)}"
        if subtitles:
            line += f",SUBTITLES={_quoted(SUBTITLES_GROUP)}"
        lines += [line, f"{rendition.quality}/index.m3u8"]
    return "\n".join(lines) + "\n"

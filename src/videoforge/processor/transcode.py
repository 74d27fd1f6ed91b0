"""Build the ffmpeg work of the pipeline: the one-decode ladder, stills, and the playlists.

The ladder is **one** ffmpeg run: the source is decoded once, ``split`` in a
``-filter_complex`` into one scaled branch per rendition, and each branch is encoded once
with libx264 (capped CRF, maxrate/bufsize, keyframes forced on the same 2 s grid in
every branch so that HLS segments line up across renditions). Each encoded branch goes to
the ``tee`` muxer, which writes the same packets twice: as an HLS fMP4 (CMAF) variant and
as a ``+faststart`` MP4. We chose ``tee`` over a second ``-c copy`` pass because it needs
no second read of the encoded files and keeps the whole ladder a single process, which
is what progress, cancellation and the timeout act on.

The thumbnail and animated preview come from a second, small run that decodes a few
seconds around 20 % of the way in (first frames are often black title cards).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.probe import ProbeResult

MASTER_PLAYLIST = "hls/master.m3u8"
THUMBNAIL = "thumbnail.jpg"
PREVIEW = "preview.gif"
METADATA = "metadata.json"
AAC_LC = "mp4a.40.2"


def _video_encoder_args(
    rendition: PlannedRendition, config: ProcessingConfig, stream: str = "v"
) -> list[str]:
    gop = max(1, round(rendition.fps * config.gop_seconds))
    args = [
        f"-c:{stream}",
        "libx264",
        f"-preset:{stream}",
        config.preset,
        f"-profile:{stream}",
        rendition.profile,
        f"-crf:{stream}",
        str(rendition.crf),
        f"-maxrate:{stream}",
        str(rendition.max_bitrate),
        f"-bufsize:{stream}",
        str(rendition.bufsize),
        # Keyframes on a fixed time grid in every rendition: segments align across the
        # ladder, so a player can switch renditions at any segment boundary.
        f"-g:{stream}",
        str(gop),
        f"-keyint_min:{stream}",
        str(gop),
        f"-sc_threshold:{stream}",
        "0",
        f"-force_key_frames:{stream}",
        f"expr:gte(t,n_forced*{config.gop_seconds:g})",
    ]
    if config.threads > 0:
        args += ["-threads", str(config.threads)]
    return args


def _audio_args(config: ProcessingConfig) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(config.audio_bitrate), "-ac", str(config.audio_channels)]


def _branch_filter(rendition: PlannedRendition, probe: ProbeResult) -> str:
    steps = []
    if rendition.fps + 1e-3 < probe.fps:
        steps.append(f"fps={rendition.fps:g}")
    steps += [
        f"scale={rendition.width}:{rendition.height}:flags=bicubic",
        "setsar=1",
        "format=yuv420p",
    ]
    return ",".join(steps)


def _tee_target(rendition: PlannedRendition, config: ProcessingConfig) -> str:
    hls = ":".join(
        [
            "f=hls",
            f"hls_time={config.hls_segment_seconds:g}",
            "hls_playlist_type=vod",
            "hls_segment_type=fmp4",
            "hls_flags=independent_segments",
            "hls_fmp4_init_filename=init.mp4",
            f"hls_segment_filename={rendition.hls_dir}/seg_%05d.m4s",
        ]
    )
    # onfail=abort on both slaves: by default a slave that fails to write (a full disk)
    # is dropped and ffmpeg still exits 0, leaving an empty output to be mistaken for
    # bad media.
    return (
        f"[{hls}:onfail=abort]{rendition.playlist_key}"
        f"|[f=mp4:movflags=+faststart:onfail=abort]{rendition.mp4_key}"
    )


def ladder_args(
    renditions: Sequence[PlannedRendition], probe: ProbeResult, config: ProcessingConfig
) -> list[str]:
    """Output options of the single-decode ladder run (paths relative to the output dir)."""
    labels = [f"s{i}" for i in range(len(renditions))]
    # yadif only touches frames flagged interlaced (camcorder DV, broadcast TS): progressive
    # sources pass through untouched, interlaced ones are not scaled with their combing.
    graph = [
        f"[0:v:0]yadif=deint=interlaced,split={len(renditions)}"
        + "".join(f"[{label}]" for label in labels)
    ]
    for i, rendition in enumerate(renditions):
        graph.append(f"[{labels[i]}]{_branch_filter(rendition, probe)}[v{i}]")
    args = ["-filter_complex", ";".join(graph), "-map_metadata", "-1", "-map_chapters", "-1"]
    for i, rendition in enumerate(renditions):
        args += ["-map", f"[v{i}]"]
        if probe.has_audio:
            args += ["-map", "0:a:0", *_audio_args(config)]
        args += [
            *_video_encoder_args(rendition, config),
            # The tee muxer has no global header of its own; mp4 and fMP4 need the
            # parameter sets in the codec configuration (avcC), not only in-band.
            "-flags",
            "+global_header",
            "-f",
            "tee",
            _tee_target(rendition, config),
        ]
    return args


@dataclass(frozen=True)
class StillsPlan:
    """Where the stills run seeks to and for how long it decodes."""

    start: float
    window: float
    thumb_width: int
    thumb_height: int
    preview_width: int
    preview_height: int


def plan_stills(probe: ProbeResult, config: ProcessingConfig) -> StillsPlan:
    """Pick a window about 20 % in (past intros and fades) and the still sizes."""
    window = min(config.preview_seconds, probe.duration)
    start = max(0.0, min(probe.duration * 0.2, probe.duration - window))

    def fit(width: int) -> tuple[int, int]:
        w = min(width, probe.width)
        h = probe.height * w / probe.width
        return max(2, int(w) // 2 * 2), max(2, round(h / 2) * 2)

    tw, th = fit(config.thumbnail_width)
    pw, ph = fit(config.preview_width)
    return StillsPlan(round(start, 3), round(window, 3), tw, th, pw, ph)


def stills_args(plan: StillsPlan, probe: ProbeResult, config: ProcessingConfig) -> list[str]:
    """Output options of the thumbnail + animated preview run."""
    frames = max(1, min(100, math.floor(plan.window * probe.fps)))
    graph = ";".join(
        [
            "[0:v:0]split=2[t][g]",
            # thumbnail= picks the frame closest to the average of the batch: a
            # representative picture rather than a fade or a black frame.
            f"[t]thumbnail={frames},scale={plan.thumb_width}:{plan.thumb_height},setsar=1[tv]",
            f"[g]fps={config.preview_fps},scale={plan.preview_width}:{plan.preview_height}"
            ":flags=lanczos,setsar=1,split[g1][g2]",
            "[g1]palettegen=max_colors=128:stats_mode=diff[p]",
            "[g2][p]paletteuse=dither=bayer:bayer_scale=4[gv]",
        ]
    )
    return [
        "-filter_complex",
        graph,
        "-map_metadata",
        "-1",
        "-map",
        "[tv]",
        "-frames:v",
        "1",
        "-q:v",
        "3",
        "-update",
        "1",
        THUMBNAIL,
        "-map",
        "[gv]",
        "-loop",
        "0",
        PREVIEW,
    ]


# ----------------------------------------------------------------------- playlists
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")


@dataclass(frozen=True)
class VariantStats:
    """Measured facts of one HLS variant, for its ``EXT-X-STREAM-INF`` line."""

    peak_bandwidth: int
    average_bandwidth: int
    segments: tuple[str, ...]  # rel keys of the media segments, in order
    codecs: str
    duration: float  # seconds, the sum of the segment durations


def avc_codec_string(init_or_mp4: Path) -> str:
    """``avc1.PPCCLL`` from the file's avcC box: the profile and level really encoded."""
    data = init_or_mp4.read_bytes()[:1_000_000]
    at = data.find(b"avcC")
    if at < 0 or at + 8 > len(data):
        raise ValueError(f"no avcC box in {init_or_mp4.name}")
    profile, compat, level = data[at + 5], data[at + 6], data[at + 7]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"


def variant_stats(outdir: Path, rendition: PlannedRendition, has_audio: bool) -> VariantStats:
    """Read a variant playlist and its segments; compute peak and average bandwidth."""
    playlist = outdir / rendition.playlist_key
    base = playlist.parent
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
            segments.append(f"{rendition.hls_dir}/{line}")
            pending = None
    if not segments:
        raise ValueError(f"{rendition.playlist_key} lists no segments")
    sizes = [(outdir / key).stat().st_size for key in segments]
    peak = max(
        (size * 8 / max(duration, 0.001) for size, duration in zip(sizes, durations, strict=True)),
        default=0.0,
    )
    average = (sum(sizes) + init_size) * 8 / max(sum(durations), 0.001)
    codecs = avc_codec_string(base / "init.mp4")
    if has_audio:
        codecs += f",{AAC_LC}"
    return VariantStats(
        peak_bandwidth=math.ceil(max(peak, average)),
        average_bandwidth=math.ceil(average),
        segments=tuple(segments),
        codecs=codecs,
        duration=sum(durations),
    )


def master_playlist(entries: Sequence[tuple[PlannedRendition, VariantStats]]) -> str:
    """The HLS master playlist; variant URIs are relative to ``hls/``."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition, stats in sorted(entries, key=lambda e: e[1].peak_bandwidth, reverse=True):
        lines.append(
            "#EXT-X-STREAM-INF:"
            f"BANDWIDTH={stats.peak_bandwidth},"
            f"AVERAGE-BANDWIDTH={stats.average_bandwidth},"
            f"RESOLUTION={rendition.width}x{rendition.height},"
            f"FRAME-RATE={rendition.fps:.3f},"
            f'CODECS="{stats.codecs}"'
        )
        lines.append(f"{rendition.quality}/index.m3u8")
    return "\n".join(lines) + "\n"

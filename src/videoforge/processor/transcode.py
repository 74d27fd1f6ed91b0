"""Build the ffmpeg work of the pipeline: the one-decode ladder, stills, and the playlists.

The ladder is **one** ffmpeg run with **one** output: the source is decoded once,
``split`` in a ``-filter_complex`` into one scaled branch per rendition, and each branch
is encoded once with libx264 (capped CRF, maxrate/bufsize, keyframes forced on the same
2 s grid in every branch so that HLS segments line up across renditions). Every audio
track is filtered (loudness, see :mod:`audio`) and encoded once. All those streams go to
the ``tee`` muxer, whose slaves each pick their streams (``select``): one HLS fMP4 (CMAF)
playlist per rung (video only), one per audio track (audio only), and one
``+faststart`` MP4 per rung carrying the rung and the default audio track. We chose
``tee`` over a second ``-c copy`` pass because it needs no second read of the encoded
files and keeps the whole ladder a single process, which is what progress, cancellation
and the timeout act on; and one tee output rather than one per rung because an encoded
stream can be shared only within one output (that is how audio is encoded once).

When :mod:`remux` finds the source's video already right for the top rung, that rung is
its packets copied (``-c:v copy``, through the same tee), and the encoded rungs put their
keyframes at the source's keyframe times instead of the 2 s grid: every HLS slave keeps
the same ``hls_time`` and cuts at the first keyframe past each multiple of it, so with
the same keyframes in every rung the cuts fall at the same times. Lower rungs may scale
the rung above them instead of the source (a cascade, planned in :mod:`ladder`).

The thumbnail and animated preview come from a second, small run that decodes a few
seconds around 20 % of the way in (first frames are often black title cards), plus a
second around each of 25/50/75 % for the thumbnail candidates a creator chooses from
(``thumbnails/1.jpg``..``3.jpg``); it runs beside the ladder when the ladder leaves a
core idle (:func:`stills_can_overlap`).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from videoforge.processor.audio import AudioRendition, default_rendition, normalize_filter
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.probe import ProbeResult
from videoforge.processor.remux import keyframe_list
from videoforge.processor.storyboard import (
    StoryboardPlan,
    storyboard_filter,
    storyboard_output_args,
)
from videoforge.processor.subtitles import SubtitleRendition

MASTER_PLAYLIST = "hls/master.m3u8"
THUMBNAIL = "thumbnail.jpg"
#: The stills a creator may choose as the thumbnail instead: ``thumbnails/1.jpg``...
THUMBNAIL_CANDIDATES_DIR = "thumbnails"
#: Where through the video each candidate is taken (fractions of the duration).
CANDIDATE_POSITIONS = (0.25, 0.5, 0.75)
#: Seconds decoded around each candidate's point, for thumbnail= to choose a frame in.
CANDIDATE_WINDOW = 1.0
PREVIEW = "preview.gif"
METADATA = "metadata.json"
AAC_LC = "mp4a.40.2"
AUDIO_GROUP = "audio"
SUBTITLES_GROUP = "subs"


def _video_encoder_args(
    rendition: PlannedRendition,
    config: ProcessingConfig,
    stream: str = "v",
    keyframes: Sequence[float] = (),
) -> list[str]:
    if rendition.copy:
        # The tag too: a copy keeps the source container's (MPEG-TS says 0x1b), which
        # the tee's mp4 slaves refuse instead of replacing it as a plain output would.
        return [f"-c:{stream}", "copy", f"-tag:{stream}", "avc1"]
    if keyframes:
        return _encoder_on_source_keyframes(rendition, config, stream, keyframes)
    gop = max(1, round(rendition.fps * config.gop_seconds))
    # Keyframes on a fixed time grid in every rendition: segments align across the
    # ladder, so a player can switch renditions at any segment boundary.
    return _x264(
        rendition,
        config,
        stream,
        gop=gop,
        keyint_min=gop,
        force_key_frames=f"expr:gte(t,n_forced*{config.gop_seconds:g})",
    )


def _x264(
    rendition: PlannedRendition,
    config: ProcessingConfig,
    stream: str,
    *,
    gop: int,
    force_key_frames: str,
    keyint_min: int | None = None,
) -> list[str]:
    """A rung's libx264 options: profile, rate control, the GOP limit and where the
    keyframes go (no scene-cut keyframes of x264's own), and the thread limit."""
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
        f"-g:{stream}",
        str(gop),
    ]
    if keyint_min is not None:
        args += [f"-keyint_min:{stream}", str(keyint_min)]
    args += [f"-sc_threshold:{stream}", "0", f"-force_key_frames:{stream}", force_key_frames]
    if config.threads > 0:
        args += ["-threads", str(config.threads)]
    return args


def _encoder_on_source_keyframes(
    rendition: PlannedRendition,
    config: ProcessingConfig,
    stream: str,
    keyframes: Sequence[float],
) -> list[str]:
    """The encoder of a rung beside a copied one: keyframes exactly at the source's
    keyframe times and nowhere else, so that its HLS segmenter cuts where the copied
    rung's does (at the first keyframe past each ``hls_time``). The GOP limit is set past
    the longest interval the remux decision allows, so x264 never adds one of its own."""
    gop = max(1, math.ceil(rendition.fps * (config.remux_max_gop_seconds + 1.0)))
    return _x264(rendition, config, stream, gop=gop, force_key_frames=keyframe_list(keyframes))


def _audio_args(config: ProcessingConfig) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(config.audio_bitrate), "-ac", str(config.audio_channels)]


def _branch_filter(
    rendition: PlannedRendition, probe: ProbeResult, input_fps: float | None = None
) -> str:
    """Scale (and thin out the frame rate of) the pictures a rung gets: the decoded
    source's, or in a cascade those of the rung above (``input_fps`` is then its rate)."""
    steps = []
    if rendition.fps + 1e-3 < (input_fps if input_fps is not None else probe.fps):
        steps.append(f"fps={rendition.fps:g}")
    steps += [
        f"scale={rendition.width}:{rendition.height}:flags=bicubic",
        "setsar=1",
        "format=yuv420p",
    ]
    return ",".join(steps)


def _hls_slave(select: str, hls_dir: str, playlist_key: str, config: ProcessingConfig) -> str:
    hls = ":".join(
        [
            f"select='{select}'",
            "f=hls",
            f"hls_time={config.hls_segment_seconds:g}",
            # EVENT while it runs: ffmpeg then rewrites the playlist (atomically) after
            # every finished segment, so what it lists can be stored and watched at
            # once (progressive.py); sealed as VOD when the ladder ends.
            "hls_playlist_type=event",
            "hls_segment_type=fmp4",
            "hls_flags=independent_segments",
            "hls_fmp4_init_filename=init.mp4",
            f"hls_segment_filename={hls_dir}/seg_%05d.m4s",
            # onfail=abort on every slave: by default a slave that fails to write (a
            # full disk) is dropped and ffmpeg still exits 0, leaving an empty output
            # to be mistaken for bad media.
            "onfail=abort",
        ]
    )
    return f"[{hls}]{playlist_key}"


def _tee_targets(
    renditions: Sequence[PlannedRendition],
    audio: Sequence[AudioRendition],
    config: ProcessingConfig,
) -> str:
    """Every file the ladder writes, as slaves of ONE tee output.

    Stream specifiers (``select``) refer to the tee output's own streams: ``v:i`` is
    rung ``i``, ``a:j`` is audio rendition ``j``. Each stream is encoded once; the tee
    hands the same packets to every slave that selects them, which is how the default
    audio track reaches every MP4 without being encoded once per rung.
    """
    default = default_rendition(list(audio))
    slaves = []
    for i, rendition in enumerate(renditions):
        slaves.append(_hls_slave(f"v\\:{i}", rendition.hls_dir, rendition.playlist_key, config))
        mp4_select = f"v\\:{i}"
        if default is not None:
            mp4_select += f",a\\:{list(audio).index(default)}"
        slaves.append(
            f"[select='{mp4_select}':f=mp4:movflags=+faststart:onfail=abort]{rendition.mp4_key}"
        )
    for j, track in enumerate(audio):
        slaves.append(_hls_slave(f"a\\:{j}", track.hls_dir, track.playlist_key, config))
    return "|".join(slaves)


def ladder_args(
    renditions: Sequence[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: Sequence[AudioRendition] = (),
    storyboard: StoryboardPlan | None = None,
    keyframes: Sequence[float] = (),
) -> list[str]:
    """Output options of the single-decode ladder run (paths relative to the output dir).

    One decode of the picture feeds every rung (``split``) and, when planned, the
    storyboard sheets (a second consumer of the same decoded stream); each audio track
    is filtered (loudness) and encoded once, for every rung. A rung planned as a ``copy``
    takes the source's video packets as they are; ``keyframes`` (the source's keyframe
    times, given with a copied rung) are then where every encoded rung puts its own.
    """
    if any(r.copy for r in renditions) and not keyframes:
        raise ValueError("a copied rung needs the source's keyframe times")
    graph = _video_graph(renditions, probe)
    for track in audio:
        graph.append(
            f"[0:a:{track.track.index}]{normalize_filter(track, config)}[a{track.track.index}]"
        )
    if storyboard is not None:
        graph.append(storyboard_filter(storyboard))
    args = ["-filter_complex", ";".join(graph)] if graph else []
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    for i, rendition in enumerate(renditions):
        args += ["-map", "0:v:0" if rendition.copy else f"[v{i}]"]
    args += [token for t in audio for token in ("-map", f"[a{t.track.index}]")]
    for i, rendition in enumerate(renditions):
        args += _video_encoder_args(rendition, config, f"v:{i}", keyframes)
    if audio:
        args += _audio_args(config)
    args += [
        # Subtitles and data streams (and attachments, never mapped) stay out.
        "-sn",
        "-dn",
        # The tee muxer has no global header of its own; mp4 and fMP4 need the
        # parameter sets in the codec configuration (avcC), not only in-band.
        "-flags",
        "+global_header",
        "-f",
        "tee",
        _tee_targets(renditions, audio, config),
    ]
    if storyboard is not None:
        args += storyboard_output_args(storyboard)
    return args


def _video_graph(renditions: Sequence[PlannedRendition], probe: ProbeResult) -> list[str]:
    """The picture's part of the filtergraph: ``[v{i}]`` for every encoded rung.

    Each rung scales the decoded source, or the frames of the rung it is planned to
    scale from (a cascade: ``split`` after that rung's own scale). A rung that scales
    from a copied rung scales the decoded source: they are the same pictures.
    """

    def parent(r: PlannedRendition) -> int | None:
        if r.scale_from is None or renditions[r.scale_from].copy:
            return None
        return r.scale_from

    encoded = [i for i, r in enumerate(renditions) if not r.copy]
    # Who consumes each node's pictures: the source ("src") and every encoded rung.
    feeds: dict[int | str, list[str]] = {
        "src": [f"s{i}" for i in encoded if parent(renditions[i]) is None]
    }
    for i in encoded:
        feeds[i] = [f"v{i}", *(f"s{j}" for j in encoded if parent(renditions[j]) == i)]

    def fan_out(node: int | str) -> str:
        labels = feeds[node]
        if len(labels) == 1:
            return f"[{labels[0]}]"
        return f",split={len(labels)}" + "".join(f"[{label}]" for label in labels)

    graph: list[str] = []
    if feeds["src"]:
        # yadif only touches frames flagged interlaced (camcorder DV, broadcast TS):
        # progressive sources pass through untouched, interlaced ones are not scaled
        # with their combing.
        graph.append("[0:v:0]yadif=deint=interlaced" + fan_out("src"))
    for i in encoded:
        up = parent(renditions[i])
        input_fps = None if up is None else renditions[up].fps
        graph.append(f"[s{i}]{_branch_filter(renditions[i], probe, input_fps)}" + fan_out(i))
    return graph


def candidate_key(number: int) -> str:
    """The output key of thumbnail candidate ``number`` (1-based, in time order)."""
    return f"{THUMBNAIL_CANDIDATES_DIR}/{number}.jpg"


@dataclass(frozen=True)
class StillsPlan:
    """Where the stills run seeks to and for how long it decodes."""

    start: float
    window: float
    thumb_width: int
    thumb_height: int
    preview_width: int
    preview_height: int
    #: Where each thumbnail candidate's window starts, and how long it is.
    candidates: tuple[float, ...] = ()
    candidate_window: float = CANDIDATE_WINDOW


def plan_stills(probe: ProbeResult, config: ProcessingConfig) -> StillsPlan:
    """Pick a window about 20 % in (past intros and fades) and the still sizes, and a
    short window centred on each of :data:`CANDIDATE_POSITIONS` for the candidates."""
    window = min(config.preview_seconds, probe.duration)
    start = max(0.0, min(probe.duration * 0.2, probe.duration - window))
    # An eighth of the video at most, so that the candidates of a short one stay apart,
    # but three frames' worth at least: a window shorter than a frame decodes nothing,
    # and one empty candidate would fail the whole stills run.
    frame = 1 / probe.fps if probe.fps > 0 else 0.04
    around = min(max(min(CANDIDATE_WINDOW, probe.duration / 8), 3 * frame), probe.duration)
    candidates = tuple(
        round(max(0.0, min(probe.duration * at - around / 2, probe.duration - around)), 3)
        for at in CANDIDATE_POSITIONS
    )

    def fit(width: int) -> tuple[int, int]:
        w = min(width, probe.width)
        h = probe.height * w / probe.width
        return max(2, int(w) // 2 * 2), max(2, round(h / 2) * 2)

    tw, th = fit(config.thumbnail_width)
    pw, ph = fit(config.preview_width)
    return StillsPlan(
        round(start, 3), round(window, 3), tw, th, pw, ph, candidates, round(around, 3)
    )


def stills_can_overlap(cpus: int, threads: int) -> bool:
    """Run the stills beside the ladder (not after it) when the ladder leaves a core idle.

    ``threads`` is FFMPEG_THREADS: with 0 every encoder may use every core, so there is
    nothing to spare; with N the ladder's encoders each keep to N threads (ffmpeg runs
    its encoders one after the other), and a machine with more cores than that has room
    for the stills run's decode, scale and GIF palette.
    """
    return threads > 0 and cpus > threads


def _jpeg(label: str, key: str) -> list[str]:
    """One JPEG still of the filter graph's output ``label``."""
    return ["-map", label, "-frames:v", "1", "-q:v", "3", "-update", "1", key]


def stills_args(plan: StillsPlan, probe: ProbeResult, config: ProcessingConfig) -> list[str]:
    """Output options of the thumbnail + animated preview run; input 0 is the preview's
    window, inputs 1.. the candidates' windows (in ``plan.candidates`` order)."""
    # thumbnail= takes batches of 2 frames or more (it picks from fewer at the end).
    frames = max(2, min(100, math.floor(plan.window * probe.fps)))
    per_candidate = max(2, min(25, math.floor(plan.candidate_window * probe.fps)))
    size = f"{plan.thumb_width}:{plan.thumb_height}"
    candidate_graph = [
        # Scaled before thumbnail= buffers its batch: a few small frames, not 4K ones.
        f"[{n}:v:0]scale={size},setsar=1,thumbnail={per_candidate}[c{n}]"
        for n in range(1, len(plan.candidates) + 1)
    ]
    candidate_outputs = [
        arg
        for n in range(1, len(plan.candidates) + 1)
        for arg in _jpeg(f"[c{n}]", candidate_key(n))
    ]
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
            *candidate_graph,
        ]
    )
    return [
        "-filter_complex",
        graph,
        "-map_metadata",
        "-1",
        *_jpeg("[tv]", THUMBNAIL),
        "-map",
        "[gv]",
        "-loop",
        "0",
        PREVIEW,
        *candidate_outputs,
    ]


# ----------------------------------------------------------------------- playlists
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

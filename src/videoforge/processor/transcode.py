"""Build the ladder's ffmpeg arguments (the stills run is :mod:`stills`, the playlists
over what it wrote :mod:`playlists`).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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

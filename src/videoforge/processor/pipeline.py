"""The media pipeline: probe, plan, transcode once, package, stills, metadata.

:func:`process_file` turns one local source into every output of a job under
``workdir/out``, named by deterministic relative keys (``hls/master.m3u8``,
``hls/720p/index.m3u8``, ``mp4/720p.mp4``, ``thumbnail.jpg``, ``preview.gif``,
``metadata.json``). The worker uploads each as ``outputs/{job_id}/{rel_key}``; playlists
and the manifest only use relative URIs, so they work wherever they are stored.

A source whose video is already right for the top rung has it copied, not encoded
(:mod:`remux`: one more bounded ffprobe reads its keyframes when the probe allows it);
the stills run beside the ladder when the ladder leaves a core idle.

This module runs the steps in order; :mod:`passes` holds the runs beside the ladder
(stills, keyframe scan, loudness, subtitles), :mod:`packaging` what is written after
them, and :mod:`results` what is handed back.

The whole layout::

    hls/master.m3u8              HLS master: video variants + AUDIO and SUBTITLES groups
    hls/manifest.mpd             DASH (static, SegmentList) over the same fMP4 files
    hls/{quality}/index.m3u8     one video rung (video only): init.mp4, seg_NNNNN.m4s
    hls/audio-{n}/index.m3u8     source audio track n (AAC, loudness-normalised)
    hls/subtitles/s{n}.vtt       source text subtitle track n as WebVTT ...
    hls/subtitles/s{n}.m3u8      ... and its single-segment playlist
    mp4/{quality}.mp4            download: the rung + the default audio track
    chapters.vtt                 container chapters (WebVTT chapters), when there are any
    storyboard/thumbnails.vtt    WebVTT thumbnails track -> storyboard/sprite_{n}.jpg#xywh=
    thumbnail.jpg, preview.gif, metadata.json (probe, tracks, loudness, notes)

Failures caused by the media raise :class:`MediaRejected` (permanent, with a stable
code); :class:`PipelineCancelled` when the cancel event is set;
:class:`~videoforge.processor.resources.LocalResourceError` when the machine failed the
run (disk full, quota, read-only or failing disk: raised by ``run_tool`` as soon as
ffmpeg says so, whatever its exit code). Anything else (ffmpeg killed by the OS, an
``OSError`` of our own writes) propagates as an ordinary exception: it may be transient.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

from videoforge.infra import tracing
from videoforge.processor import ffmpeg, runner
from videoforge.processor.audio import AudioRendition, Loudness, plan_audio
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, MediaRejected, PipelineCancelled, Tool
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.packaging import (
    Produced,
    check_complete,
    collect_audio,
    collect_variants,
    finish,
)
from videoforge.processor.passes import (
    extract_subtitles,
    measure_loudness,
    run_stills,
    scan_keyframes,
    stills_argv,
    tool_failure,
    usable_cpus,
)
from videoforge.processor.probe import ProbeResult, probe_file
from videoforge.processor.progress import Progress, ProgressCallback
from videoforge.processor.progressive import (
    SNAPSHOT_DIR,
    GrowingLadder,
    ReadyOutputs,
    seal_playlists,
)
from videoforge.processor.remux import RemuxReason, decide_remux
from videoforge.processor.results import PipelineResult
from videoforge.processor.stills import plan_stills, stills_can_overlap
from videoforge.processor.storyboard import STORYBOARD_DIR, plan_storyboard
from videoforge.processor.subtitles import SUBTITLES_DIR, plan_subtitles
from videoforge.processor.transcode import ladder_args

__all__ = [
    "MediaRejected",
    "PipelineCancelled",
    "PipelineResult",
    "process_file",
]

#: Receives what the ladder finished while it runs (see :mod:`progressive`); the files
#: handed out stay as they are until it returns.
SegmentsCallback = Callable[[ReadyOutputs], Awaitable[None]]

# Share of the progress bar each step gets; the ladder is nearly all of the work.
_PROBED = 2
_MEASURED = 5
_LADDER_END = 94
_STILLS_END = 98


_SEGMENT_POLL_SECONDS = 0.5


async def _watch_segments(
    outdir: Path,
    renditions: Sequence[PlannedRendition],
    segment_seconds: float,
    report: Callable[[float], Awaitable[None]],
    growing: GrowingLadder | None = None,
    on_segments: SegmentsCallback | None = None,
) -> None:
    """Report the ladder's progress from its finished HLS segments, every second, until
    cancelled: a rung's segment is finished once the next one has been started, so the
    slowest rung's count less one, times the segment length, is source time done (an
    underestimate where segments are cut at keyframes past the multiple).

    With ``growing``, every finished segment and growing playlist is also handed to
    ``on_segments`` as soon as it is seen (awaited before the next look).
    """
    dirs = [outdir / rendition.hls_dir for rendition in renditions]
    while True:
        await asyncio.sleep(_SEGMENT_POLL_SECONDS)
        counts = await asyncio.to_thread(
            lambda: [sum(1 for _ in d.glob("seg_*.m4s")) if d.is_dir() else 0 for d in dirs]
        )
        if counts and min(counts) > 1:
            await report((min(counts) - 1) * segment_seconds)
        if growing is not None and on_segments is not None:
            ready = await asyncio.to_thread(growing.scan)
            if ready is not None:
                await on_segments(ready)


def _check_cancel(cancel: asyncio.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise PipelineCancelled("processing was cancelled")


async def process_file(
    source: Path,
    workdir: Path,
    config: ProcessingConfig,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: asyncio.Event | None = None,
    loudness_normalization: bool | None = None,
    on_segments: SegmentsCallback | None = None,
    probe: ProbeResult | None = None,
) -> PipelineResult:
    """Probe ``source``, then produce the ladder, HLS, DASH, MP4s, text tracks, stills,
    storyboard and metadata.

    Outputs are written under ``workdir / "out"`` (replaced if present, so a retried job
    starts clean). ``on_progress`` receives 0-100, increasing, ending at 100.
    ``loudness_normalization`` is the job's own choice (None: the config's).
    ``on_segments`` receives, while the ladder runs, every HLS segment it finished and
    the growing media playlists listing them (:mod:`progressive`); the result's
    ``outputs`` still list every file, those too, under the same keys. ``probe`` is
    ``source``'s probe when the caller made one already (with the same limits): it is
    not run again.
    """
    if loudness_normalization is not None:
        config = config.with_overrides(loudness_normalization=loudness_normalization)
    progress = Progress(on_progress)
    await progress.report(0)
    outdir = await asyncio.to_thread(_fresh_dir, workdir / "out")
    notes: list[dict[str, object]] = []

    source = await asyncio.to_thread(_neutral_name, source, workdir)
    if probe is None:
        probe = await tracing.traced(
            "probe", probe_file(source, config, cwd=workdir, cancel=cancel)
        )
    await progress.report(_PROBED)
    _check_cancel(cancel)

    renditions = plan_ladder(
        probe.width,
        probe.height,
        probe.fps,
        config.rungs,
        max_fps=config.max_fps,
        cascade=config.cascade_scaling,
    )
    measured: dict[int, Loudness] = {}
    elapsed = 0.0  # of the transcode_timeout budget, shared by every run after the probe
    if probe.audio_tracks and config.loudness_normalization:
        measured, elapsed = await tracing.traced(
            "loudness", measure_loudness(source, outdir, probe, config, cancel, notes)
        )
        await progress.report(_MEASURED)
    audio = plan_audio(probe.audio_tracks, measured, config)
    remux = decide_remux(probe, renditions[0], config.remux_max_gop_seconds)
    if remux.reason is RemuxReason.UNSCANNED:
        remux, spent = await tracing.traced(
            "keyframes", scan_keyframes(source, outdir, probe, renditions[0], config, cancel)
        )
        elapsed += spent
    if remux.remux:
        renditions[0] = replace(renditions[0], copy=True)
    _check_cancel(cancel)
    storyboard = plan_storyboard(probe.duration, probe.width, probe.height, config)
    await asyncio.to_thread(_make_dirs, outdir, renditions, audio)

    async def ladder_progress(seconds: float) -> None:
        share = min(1.0, seconds / probe.duration)
        await progress.report(_MEASURED + share * (_LADDER_END - _MEASURED))

    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=ladder_args(renditions, probe, config, audio, storyboard, remux.keyframes),
        progress=True,
    )
    stills = plan_stills(probe, config)
    still_argv = stills_argv(source, stills, probe, config)
    # What the stills run falls back to when a candidate cannot be made: the choice of a
    # thumbnail is never the reason a job fails.
    plain_stills = stills_argv(source, replace(stills, candidates=()), probe, config)
    # Both within what is left of the job's budget, from the same start.
    time_left = max(1.0, config.transcode_timeout - elapsed)
    ladder_run = asyncio.create_task(
        tracing.traced(
            "ladder",
            runner.run_tool(
                argv,
                cwd=outdir,
                time_limit=time_left,
                config=config,
                cancel=cancel,
                on_progress_time=ladder_progress,
                watch_dir=outdir,
                max_output_bytes=config.max_output_bytes,
            ),
            renditions=len(renditions),
            audio_tracks=len(audio),
        )
    )
    # ffmpeg 5.1 prints no -progress report until every output has written something,
    # and the storyboard's first sprite is a whole tile grid of source time away: the
    # finished HLS segments are the other, always-honest measure of the ladder's work.
    growing = None
    if on_segments is not None:
        snapshots = await asyncio.to_thread(_fresh_dir, workdir / SNAPSHOT_DIR)
        growing = GrowingLadder(outdir, renditions, audio, snapshots)
    segments_watch = asyncio.create_task(
        _watch_segments(
            outdir, renditions, config.hls_segment_seconds, ladder_progress, growing, on_segments
        )
    )
    stills_run = (
        asyncio.create_task(
            run_stills(still_argv, outdir, config, cancel, time_left, fallback=plain_stills)
        )
        if config.overlap_stills and stills_can_overlap(usable_cpus(), config.threads)
        else None
    )
    try:
        result = await ladder_run
        # What the ladder finished after the last look goes with the final outputs.
        segments_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await segments_watch
        if result.returncode != 0:
            raise tool_failure(result, argv, default="corrupt_media")
        await asyncio.to_thread(
            seal_playlists,
            outdir,
            [*(r.playlist_key for r in renditions), *(a.playlist_key for a in audio)],
        )
        await progress.report(_LADDER_END)
        stats = await asyncio.to_thread(collect_variants, outdir, renditions)
        audio_stats = await asyncio.to_thread(collect_audio, outdir, audio)
        check_complete(probe, [*stats, *audio_stats], result.stderr_tail)
        _check_cancel(cancel)
        elapsed += result.elapsed

        subtitles, subtitle_notes = plan_subtitles(probe.subtitle_tracks, config)
        notes += subtitle_notes
        if subtitles:
            subtitles, spent = await tracing.traced(
                "subtitles",
                extract_subtitles(
                    source, outdir, subtitles, config, cancel, notes,
                    config.transcode_timeout - elapsed,
                ),
            )  # fmt: skip
            elapsed += spent
        _check_cancel(cancel)
        if stills_run is None:
            await run_stills(
                still_argv,
                outdir,
                config,
                cancel,
                max(1.0, config.transcode_timeout - elapsed),
                fallback=plain_stills,
            )
        else:
            await stills_run
    finally:
        # A failed, cancelled or refused ladder stops the stills run with it (and the
        # reverse cannot happen: the stills' error waits for the ladder's end).
        segments_watch.cancel()
        for task in (ladder_run, stills_run, segments_watch):
            if task is None:
                continue
            if not task.done():
                task.cancel()
            # Also collects the error of a run that failed while the other one decided
            # the outcome (no "exception was never retrieved").
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    await progress.report(_STILLS_END)
    produced = Produced(
        renditions=list(zip(renditions, stats, strict=True)),
        audio=list(zip(audio, audio_stats, strict=True)),
        subtitles=subtitles,
        storyboard=storyboard,
        notes=notes,
        remux=remux,
    )
    finished = await asyncio.to_thread(finish, outdir, probe, produced, config)
    await progress.report(100)
    return finished


_NEUTRAL_NAME = "media-input"


def _neutral_name(source: Path, workdir: Path) -> Path:
    """A link to ``source`` under a name without an extension.

    ffmpeg lets a file's extension tip the choice of demuxer. The name comes from the
    uploader, so behind a neutral name the demuxer is chosen by the bytes alone: a text
    file called ``x.mp4`` is then "not a video", not "a damaged MP4".
    """
    link = workdir / _NEUTRAL_NAME
    source = source.absolute()
    if source == link:
        return source
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(source)
    except OSError:
        return source  # no symlinks on this filesystem: the extension hint stays
    return link


def _fresh_dir(path: Path) -> Path:
    # A retried job starts from nothing: no stale segment may survive into the upload.
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _make_dirs(
    outdir: Path, renditions: list[PlannedRendition], audio: list[AudioRendition]
) -> None:
    for rendition in renditions:
        (outdir / rendition.hls_dir).mkdir(parents=True, exist_ok=True)
    for track in audio:
        (outdir / track.hls_dir).mkdir(parents=True, exist_ok=True)
    (outdir / SUBTITLES_DIR).mkdir(parents=True, exist_ok=True)
    (outdir / STORYBOARD_DIR).mkdir(exist_ok=True)
    (outdir / "mp4").mkdir(exist_ok=True)

"""The media pipeline: probe, plan, transcode once, package, stills, metadata.

:func:`process_file` turns one local source into every output of a job under
``workdir/out``, named by deterministic relative keys (``hls/master.m3u8``,
``hls/720p/index.m3u8``, ``mp4/720p.mp4``, ``thumbnail.jpg``, ``preview.gif``,
``metadata.json``). The worker uploads each as ``outputs/{job_id}/{rel_key}``; playlists
and the manifest only use relative URIs, so they work wherever they are stored.

A source whose video is already right for the top rung has it copied, not encoded
(:mod:`remux`: one more bounded ffprobe reads its keyframes when the probe allows it);
the stills run beside the ladder when the ladder leaves a core idle.

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
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from videoforge.infra import tracing
from videoforge.messages import AudioTrackMessage, Rendition, TextTrackMessage
from videoforge.processor import ffmpeg
from videoforge.processor.audio import (
    AudioRendition,
    Loudness,
    measure_args,
    parse_measurements,
    plan_audio,
)
from videoforge.processor.chapters import CHAPTERS_VTT, chapters_vtt
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.dash import DASH_MANIFEST, dash_manifest
from videoforge.processor.ffmpeg import (
    MediaInput,
    MediaRejected,
    PipelineCancelled,
    Tool,
    ToolError,
)
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.probe import ProbeResult, classify_stderr, probe_file
from videoforge.processor.progress import Progress, ProgressCallback
from videoforge.processor.progressive import (
    HLS_CONTENT_TYPES,
    SNAPSHOT_DIR,
    GrowingLadder,
    ReadyOutputs,
    seal_playlists,
)
from videoforge.processor.remux import (
    RemuxDecision,
    RemuxReason,
    decide_remux,
    keyframe_scan_args,
    parse_keyframe_scan,
)
from videoforge.processor.storyboard import (
    STORYBOARD_DIR,
    STORYBOARD_VTT,
    StoryboardPlan,
    plan_storyboard,
    storyboard_vtt,
)
from videoforge.processor.subtitles import (
    SUBTITLES_DIR,
    SubtitleRendition,
    check_extracted,
    dropped,
    extract_args,
    plan_subtitles,
    subtitle_playlist,
)
from videoforge.processor.transcode import (
    CANDIDATE_POSITIONS,
    MASTER_PLAYLIST,
    METADATA,
    PREVIEW,
    THUMBNAIL,
    THUMBNAIL_CANDIDATES_DIR,
    StillsPlan,
    VariantStats,
    audio_stats,
    candidate_key,
    ladder_args,
    master_playlist,
    plan_stills,
    stills_args,
    stills_can_overlap,
    variant_stats,
)

__all__ = [
    "MediaRejected",
    "Output",
    "PipelineCancelled",
    "PipelineResult",
    "ProbeResult",
    "RenditionInfo",
    "process_file",
]

OutputKind = Literal["video", "hls", "thumbnail", "gif", "metadata"]
#: Receives what the ladder finished while it runs (see :mod:`progressive`); the files
#: handed out stay as they are until it returns.
SegmentsCallback = Callable[[ReadyOutputs], Awaitable[None]]

# Share of the progress bar each step gets; the ladder is nearly all of the work.
_PROBED = 2
_MEASURED = 5
_LADDER_END = 94
_STILLS_END = 98

# Markers of failures that are the machine's or our configuration's fault, not the
# media's: they must not be recorded as "bad media" (permanent) but surface as errors.
# (Disk-full and the like never get here: run_tool raises LocalResourceError for them.)
_NOT_THE_MEDIA = (
    "cannot allocate memory",
    "resource temporarily",
    "error initializing output stream",
    "error while opening encoder",
    "unknown encoder",
    "unrecognized option",
    "option not found",
    "no such filter",
    "error setting profile",
)


@dataclass(frozen=True)
class Output:
    """One file produced for a job."""

    rel_key: str
    path: Path
    kind: OutputKind
    content_type: str
    quality: str | None
    size: int


@dataclass(frozen=True)
class RenditionInfo:
    """One rendition as produced; :meth:`to_message` gives the wire :class:`Rendition`."""

    quality: str
    width: int
    height: int
    fps: float
    bandwidth: int  # peak bits/s, as in the master playlist's BANDWIDTH
    average_bandwidth: int
    codecs: str
    mp4_key: str
    playlist_key: str
    mp4_size: int

    def to_message(self, key_prefix: str = "") -> Rendition:
        """The event's rendition; ``key_prefix`` is e.g. ``"outputs/{job_id}/"``."""
        return Rendition(
            quality=self.quality,
            width=self.width,
            height=self.height,
            bandwidth=self.bandwidth,
            mp4_key=key_prefix + self.mp4_key,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class AudioInfo:
    """One audio rendition as produced (for the event and the metadata document)."""

    index: int
    language: str | None
    label: str
    default: bool
    playlist_key: str
    bandwidth: int
    loudness: dict[str, float] | None  # the source track's EBU R128 figures
    normalization: str  # linear, dynamic, silent, off, unmeasured

    def to_message(self, key_prefix: str = "") -> AudioTrackMessage:
        return AudioTrackMessage(
            index=self.index,
            language=self.language,
            label=self.label,
            default=self.default,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class SubtitleInfo:
    """One text track extracted from the source."""

    index: int
    language: str | None
    label: str
    default: bool
    forced: bool
    codec: str
    vtt_key: str
    playlist_key: str

    def to_message(self, key_prefix: str = "") -> TextTrackMessage:
        return TextTrackMessage(
            index=self.index,
            language=self.language,
            label=self.label,
            default=self.default,
            forced=self.forced,
            vtt_key=key_prefix + self.vtt_key,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class PipelineResult:
    """Everything :func:`process_file` made, plus what the probe learnt."""

    probe: ProbeResult
    renditions: list[RenditionInfo]
    outputs: list[Output]
    master_playlist: str
    thumbnail: str
    preview: str
    metadata: str
    output_dir: Path
    #: The thumbnail candidates that were made, in time order (``thumbnails/N.jpg``).
    thumbnail_candidates: list[str] = field(default_factory=list)
    dash_manifest: str | None = None
    audio_tracks: list[AudioInfo] = field(default_factory=list)
    subtitles: list[SubtitleInfo] = field(default_factory=list)
    chapters: str | None = None  # chapters.vtt, when the source has chapters
    storyboard: str | None = None  # the thumbnails WebVTT track
    storyboard_sheets: list[str] = field(default_factory=list)
    notes: list[dict[str, object]] = field(default_factory=list)
    # Whether the top rung is the source's own video (remux.py), and why (or why not).
    remux: dict[str, object] | None = None

    @property
    def total_size(self) -> int:
        return sum(output.size for output in self.outputs)


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


def _tool_failure(result: ffmpeg.RunResult, argv: list[str], default: str) -> Exception:
    tail = result.stderr_tail.lower()
    if result.returncode < 0 or any(marker in tail for marker in _NOT_THE_MEDIA):
        return ToolError(argv, result.returncode, result.stderr_tail)
    return classify_stderr(result.stderr_tail, default=default)


async def process_file(
    source: Path,
    workdir: Path,
    config: ProcessingConfig,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: asyncio.Event | None = None,
    loudness_normalization: bool | None = None,
    on_segments: SegmentsCallback | None = None,
) -> PipelineResult:
    """Probe ``source``, then produce the ladder, HLS, DASH, MP4s, text tracks, stills,
    storyboard and metadata.

    Outputs are written under ``workdir / "out"`` (replaced if present, so a retried job
    starts clean). ``on_progress`` receives 0-100, increasing, ending at 100.
    ``loudness_normalization`` is the job's own choice (None: the config's).
    ``on_segments`` receives, while the ladder runs, every HLS segment it finished and
    the growing media playlists listing them (:mod:`progressive`); the result's
    ``outputs`` still list every file, those too, under the same keys.
    """
    if loudness_normalization is not None:
        config = config.with_overrides(loudness_normalization=loudness_normalization)
    progress = Progress(on_progress)
    await progress.report(0)
    outdir = await asyncio.to_thread(_fresh_dir, workdir / "out")
    notes: list[dict[str, object]] = []

    source = await asyncio.to_thread(_neutral_name, source, workdir)
    probe = await tracing.traced("probe", probe_file(source, config, cwd=workdir, cancel=cancel))
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
            "loudness", _measure_loudness(source, outdir, probe, config, cancel, notes)
        )
        await progress.report(_MEASURED)
    audio = plan_audio(probe.audio_tracks, measured, config)
    remux = decide_remux(probe, renditions[0], config.remux_max_gop_seconds)
    if remux.reason is RemuxReason.UNSCANNED:
        remux, spent = await tracing.traced(
            "keyframes", _scan_keyframes(source, outdir, probe, renditions[0], config, cancel)
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
    stills_argv = _stills_argv(source, stills, probe, config)
    # What the stills run falls back to when a candidate cannot be made: the choice of a
    # thumbnail is never the reason a job fails.
    plain_stills = _stills_argv(source, replace(stills, candidates=()), probe, config)
    # Both within what is left of the job's budget, from the same start.
    time_left = max(1.0, config.transcode_timeout - elapsed)
    ladder_run = asyncio.create_task(
        tracing.traced(
            "ladder",
            ffmpeg.run_tool(
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
            _run_stills(stills_argv, outdir, config, cancel, time_left, fallback=plain_stills)
        )
        if config.overlap_stills and stills_can_overlap(_usable_cpus(), config.threads)
        else None
    )
    try:
        result = await ladder_run
        # What the ladder finished after the last look goes with the final outputs.
        segments_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await segments_watch
        if result.returncode != 0:
            raise _tool_failure(result, argv, default="corrupt_media")
        await asyncio.to_thread(
            seal_playlists,
            outdir,
            [*(r.playlist_key for r in renditions), *(a.playlist_key for a in audio)],
        )
        await progress.report(_LADDER_END)
        stats = await asyncio.to_thread(_collect_variants, outdir, renditions)
        audio_stats = await asyncio.to_thread(_collect_audio, outdir, audio)
        _check_complete(probe, [*stats, *audio_stats], result.stderr_tail)
        _check_cancel(cancel)
        elapsed += result.elapsed

        subtitles, subtitle_notes = plan_subtitles(probe.subtitle_tracks, config)
        notes += subtitle_notes
        if subtitles:
            subtitles, spent = await tracing.traced(
                "subtitles",
                _extract_subtitles(
                    source, outdir, subtitles, config, cancel, notes,
                    config.transcode_timeout - elapsed,
                ),
            )  # fmt: skip
            elapsed += spent
        _check_cancel(cancel)
        if stills_run is None:
            await _run_stills(
                stills_argv,
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
    produced = _Produced(
        renditions=list(zip(renditions, stats, strict=True)),
        audio=list(zip(audio, audio_stats, strict=True)),
        subtitles=subtitles,
        storyboard=storyboard,
        notes=notes,
        remux=remux,
    )
    finished = await asyncio.to_thread(_finish, outdir, probe, produced, config)
    await progress.report(100)
    return finished


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _stills_argv(
    source: Path, plan: StillsPlan, probe: ProbeResult, config: ProcessingConfig
) -> list[str]:
    """The stills run of ``plan``: the preview's window, then each candidate's."""
    return ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[
            MediaInput(source, ("-ss", f"{plan.start:g}", "-t", f"{plan.window:g}")),
            *(
                MediaInput(source, ("-ss", f"{at:g}", "-t", f"{plan.candidate_window:g}"))
                for at in plan.candidates
            ),
        ],
        args=stills_args(plan, probe, config),
    )


async def _run_stills(
    argv: list[str],
    outdir: Path,
    config: ProcessingConfig,
    cancel: asyncio.Event | None,
    time_limit: float,
    *,
    fallback: list[str] | None = None,
) -> None:
    """The thumbnail, preview and thumbnail candidates run; raises what its failure
    means. A failed run is tried once more as ``fallback`` (the same stills without the
    candidates) before it fails the job."""
    candidates = outdir / THUMBNAIL_CANDIDATES_DIR
    candidates.mkdir(exist_ok=True)
    with tracing.span("stills") as span:
        for tries, attempt in enumerate((argv, fallback), start=1):
            if attempt is None:
                break
            span.set_attribute("videoforge.attempts", tries)
            result = await ffmpeg.run_tool(
                attempt,
                cwd=outdir,
                time_limit=time_limit,
                config=config,
                cancel=cancel,
                watch_dir=outdir,
                max_output_bytes=config.max_output_bytes,
            )
            if result.returncode == 0:
                return
            shutil.rmtree(candidates, ignore_errors=True)  # half-written choices: none offered
        raise _tool_failure(result, argv if fallback is None else fallback, default="corrupt_media")


async def _scan_keyframes(
    source: Path,
    outdir: Path,
    probe: ProbeResult,
    top: PlannedRendition,
    config: ProcessingConfig,
    cancel: asyncio.Event | None,
) -> tuple[RemuxDecision, float]:
    """Read the video's packets (demuxed, not decoded) for the remux decision.

    Bounded like the probe (``probe_timeout``, a stdout cap): a scan that cannot finish
    is never the reason a job fails, the source is then encoded like any other.
    Returns the decision and the seconds spent.
    """
    argv = ffmpeg.build_argv(
        config, Tool.FFPROBE, inputs=[MediaInput(source)], args=keyframe_scan_args()
    )
    try:
        result = await ffmpeg.run_tool(
            argv,
            cwd=outdir,
            time_limit=config.probe_timeout,
            config=config,
            cancel=cancel,
            # ~30 bytes a packet: four hours at 60 fps fit.
            max_stdout_bytes=64 * 1024 * 1024,
        )
    except MediaRejected as exc:  # over the time limit or the output cap
        return RemuxDecision(False, RemuxReason.SCAN_FAILED, exc.message), config.probe_timeout
    scan = parse_keyframe_scan(result.stdout.decode("ascii", "replace"))
    if result.returncode != 0 or scan is None:
        decision = RemuxDecision(False, RemuxReason.SCAN_FAILED, "the packets could not be read")
        return decision, result.elapsed
    return decide_remux(probe, top, config.remux_max_gop_seconds, scan), result.elapsed


async def _measure_loudness(
    source: Path,
    outdir: Path,
    probe: ProbeResult,
    config: ProcessingConfig,
    cancel: asyncio.Event | None,
    notes: list[dict[str, object]],
) -> tuple[dict[int, Loudness], float]:
    """loudnorm's first pass over every audio track, in one audio-only run.

    Measuring is never the reason a job fails: a track that cannot be measured is
    encoded as it is, with a note (if its audio is really broken, the ladder says so).
    """
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=measure_args(probe.audio_tracks, config),
        log_level="info",  # loudnorm reports at the info level, on stderr
    )
    # The reports come last; keep enough of stderr for one per track.
    report_config = config.with_overrides(
        stderr_tail_bytes=max(config.stderr_tail_bytes, 2048 * (len(probe.audio_tracks) + 4))
    )
    result = await ffmpeg.run_tool(
        argv,
        cwd=outdir,
        time_limit=config.transcode_timeout,
        config=report_config,
        cancel=cancel,
    )
    measured = parse_measurements(result.stderr_tail) if result.returncode == 0 else {}
    for track in probe.audio_tracks:
        if track.index not in measured:
            notes.append(
                {
                    "kind": "audio",
                    "track": track.index,
                    "outcome": "not_normalized",
                    "reason": "the loudness could not be measured",
                }
            )
    return measured, result.elapsed


async def _extract_subtitles(
    source: Path,
    outdir: Path,
    planned: list[SubtitleRendition],
    config: ProcessingConfig,
    cancel: asyncio.Event | None,
    notes: list[dict[str, object]],
    time_left: float,
) -> tuple[list[SubtitleRendition], float]:
    """Every planned track to WebVTT in one run; when that run fails, one run per track,
    so one broken track costs only itself. Returns the tracks kept and the time spent."""
    spent = 0.0

    async def run(batch: list[SubtitleRendition]) -> bool:
        nonlocal spent
        argv = ffmpeg.build_argv(
            config, Tool.FFMPEG, inputs=[MediaInput(source)], args=extract_args(batch)
        )
        result = await ffmpeg.run_tool(
            argv,
            cwd=outdir,
            time_limit=max(1.0, min(config.probe_timeout * 5, time_left - spent)),
            config=config,
            cancel=cancel,
            watch_dir=outdir,
            max_output_bytes=config.max_output_bytes,
        )
        spent += result.elapsed
        return result.returncode == 0

    try:
        batch_ok = await run(planned)
    except MediaRejected as exc:  # a timeout or an absurd size: no subtitles
        notes += [dropped(s, exc.message) for s in planned]
        return [], spent
    kept: list[SubtitleRendition] = []
    for rendition in planned:
        ok = batch_ok
        if not ok:
            try:
                ok = await run([rendition])
            except MediaRejected as exc:
                notes.append(dropped(rendition, exc.message))
                continue
        reason = (
            await asyncio.to_thread(check_extracted, outdir, rendition, config)
            if ok
            else "the track could not be converted"
        )
        if reason is None:
            kept.append(rendition)
        else:
            (outdir / rendition.vtt_key).unlink(missing_ok=True)
            notes.append(dropped(rendition, reason))
    return kept, spent


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


@dataclass
class _Produced:
    """What the runs made, before the playlists and documents are written."""

    renditions: list[tuple[PlannedRendition, VariantStats]]
    audio: list[tuple[AudioRendition, VariantStats]]
    subtitles: list[SubtitleRendition]
    storyboard: StoryboardPlan
    notes: list[dict[str, object]]
    remux: RemuxDecision | None = None


def _finish(
    outdir: Path, probe: ProbeResult, produced: _Produced, config: ProcessingConfig
) -> PipelineResult:
    """Check the stills, write the playlists, manifest, text tracks and metadata, list
    every output."""
    for still in (THUMBNAIL, PREVIEW):
        if not (outdir / still).is_file() or (outdir / still).stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No picture could be decoded from the video.")
    for sub in produced.subtitles:
        (outdir / sub.playlist_key).write_text(subtitle_playlist(sub, probe.duration))
    (outdir / MASTER_PLAYLIST).write_text(
        master_playlist(
            produced.renditions,
            produced.audio,
            produced.subtitles,
            audio_channels=config.audio_channels,
        )
    )
    (outdir / DASH_MANIFEST).write_text(
        dash_manifest(
            outdir,
            probe.duration,
            produced.renditions,
            produced.audio,
            produced.subtitles,
            min_buffer=config.hls_segment_seconds,
            audio_channels=config.audio_channels,
        )
    )
    chapters = CHAPTERS_VTT if probe.chapters else None
    if chapters:
        (outdir / chapters).write_text(chapters_vtt(probe.chapters))
    storyboard: str | None = STORYBOARD_VTT
    plan = produced.storyboard
    for extra in sorted((outdir / STORYBOARD_DIR).glob("sprite_*.jpg")):
        if extra.relative_to(outdir).as_posix() not in plan.sheet_keys:
            extra.unlink()  # a rounding tile past the end: nothing points at it
    if all((outdir / key).is_file() for key in plan.sheet_keys):
        (outdir / STORYBOARD_VTT).write_text(storyboard_vtt(plan, probe.duration))
    else:
        storyboard = None
        produced.notes.append(
            {"kind": "storyboard", "outcome": "dropped", "reason": "sheets missing"}
        )
    infos = [
        RenditionInfo(
            quality=r.quality,
            width=r.width,
            height=r.height,
            fps=r.fps,
            bandwidth=s.peak_bandwidth,
            average_bandwidth=s.average_bandwidth,
            codecs=s.codecs,
            mp4_key=r.mp4_key,
            playlist_key=r.playlist_key,
            mp4_size=(outdir / r.mp4_key).stat().st_size,
        )
        for r, s in produced.renditions
    ]
    audio_infos = [
        AudioInfo(
            index=a.track.index,
            language=a.track.language,
            label=a.label,
            default=a.track.default,
            playlist_key=a.playlist_key,
            bandwidth=s.peak_bandwidth,
            loudness=a.loudness.to_dict() if a.loudness else None,
            normalization=a.mode(config),
        )
        for a, s in produced.audio
    ]
    subtitle_infos = [
        SubtitleInfo(
            index=sub.track.index,
            language=sub.track.language,
            label=sub.label,
            default=sub.track.default,
            forced=sub.track.forced,
            codec=sub.track.codec,
            vtt_key=sub.vtt_key,
            playlist_key=sub.playlist_key,
        )
        for sub in produced.subtitles
    ]
    result = PipelineResult(
        probe=probe,
        renditions=infos,
        outputs=[],
        master_playlist=MASTER_PLAYLIST,
        thumbnail=THUMBNAIL,
        preview=PREVIEW,
        metadata=METADATA,
        output_dir=outdir,
        thumbnail_candidates=_candidates_made(outdir),
        dash_manifest=DASH_MANIFEST,
        audio_tracks=audio_infos,
        subtitles=subtitle_infos,
        chapters=chapters,
        storyboard=storyboard,
        storyboard_sheets=plan.sheet_keys if storyboard else [],
        notes=produced.notes,
        remux=produced.remux.to_dict() if produced.remux else None,
    )
    (outdir / METADATA).write_text(json.dumps(_metadata(result, config), indent=2) + "\n")
    outputs = _list_outputs(outdir)
    if sum(output.size for output in outputs) > config.max_output_bytes:
        raise MediaRejected(
            "output_too_large",
            f"The outputs grew beyond the {config.max_output_bytes} byte limit.",
        )
    return replace(result, outputs=outputs)


def _candidates_made(outdir: Path) -> list[str]:
    """The candidates' keys, without any that came out empty: a missing choice is no
    reason to fail a job that has its thumbnail."""
    made: list[str] = []
    for number in range(1, len(CANDIDATE_POSITIONS) + 1):
        path = outdir / candidate_key(number)
        if path.is_file() and path.stat().st_size > 0:
            made.append(candidate_key(number))
        else:
            path.unlink(missing_ok=True)
    return made


def _collect_variants(outdir: Path, renditions: list[PlannedRendition]) -> list[VariantStats]:
    stats: list[VariantStats] = []
    for rendition in renditions:
        mp4 = outdir / rendition.mp4_key
        if not mp4.is_file() or mp4.stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No video could be decoded from the file.")
        try:
            stats.append(variant_stats(outdir, rendition))
        except (OSError, ValueError):
            raise MediaRejected(
                "corrupt_media", "No video could be decoded from the file."
            ) from None
    return stats


def _collect_audio(outdir: Path, audio: list[AudioRendition]) -> list[VariantStats]:
    try:
        return [audio_stats(outdir, track) for track in audio]
    except (OSError, ValueError):
        raise MediaRejected("corrupt_media", "The audio could not be decoded.") from None


def _check_complete(probe: ProbeResult, stats: list[VariantStats], stderr_tail: str) -> None:
    """Refuse a source whose data ends before its container says it does (truncated).

    ffmpeg treats a cut-off file as a short one and exits 0; a video published at half
    its length would be worse than a clear failure.
    """
    produced = min(s.duration for s in stats)
    if "partial file" in stderr_tail.lower() or produced < probe.duration * 0.9 - 0.5:
        raise MediaRejected(
            "corrupt_media",
            f"The file is incomplete: only {produced:.1f} s of {probe.duration:.1f} s "
            "could be decoded.",
        )


def _metadata(result: PipelineResult, config: ProcessingConfig) -> dict[str, Any]:
    return {
        "version": 2,
        "source": result.probe.to_dict(),
        "renditions": [asdict(info) for info in result.renditions],
        "audio": [asdict(info) for info in result.audio_tracks],
        "loudness": {
            "normalization": config.loudness_normalization,
            "target_lufs": config.loudness_target,
            "true_peak_dbtp": config.loudness_true_peak,
        },
        "subtitles": [asdict(info) for info in result.subtitles],
        "hls_master": result.master_playlist,
        "dash_manifest": result.dash_manifest,
        "chapters": result.chapters,
        "storyboard": result.storyboard,
        "storyboard_sheets": result.storyboard_sheets,
        "thumbnail": result.thumbnail,
        "thumbnail_candidates": result.thumbnail_candidates,
        "preview": result.preview,
        # Tracks that were skipped or dropped, and why: never a reason to fail the job.
        "notes": result.notes,
        "remux": result.remux,
    }


_CONTENT_TYPES = {
    **HLS_CONTENT_TYPES,
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".json": "application/json",
}


def _list_outputs(outdir: Path) -> list[Output]:
    outputs: list[Output] = []
    for path in sorted(p for p in outdir.rglob("*") if p.is_file()):
        rel_key = path.relative_to(outdir).as_posix()
        parts = rel_key.split("/")
        kind: OutputKind
        quality: str | None = None
        if parts[0] == "hls":
            kind = "hls"
            quality = parts[1] if len(parts) == 3 else None
        elif parts[0] == STORYBOARD_DIR and path.suffix == ".jpg":
            kind = "thumbnail"
        elif parts[0] == "mp4":
            kind, quality = "video", path.stem
        elif rel_key == THUMBNAIL or parts[0] == THUMBNAIL_CANDIDATES_DIR:
            kind = "thumbnail"
        elif rel_key == PREVIEW:
            kind = "gif"
        else:
            kind = "metadata"
        outputs.append(
            Output(
                rel_key=rel_key,
                path=path,
                kind=kind,
                content_type=_CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                quality=quality,
                size=path.stat().st_size,
            )
        )
    return outputs


# -------------------------------------------------------------------------------- CLI

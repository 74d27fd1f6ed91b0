"""The runs of a chunked job (issue 15; the plan and the arguments are :mod:`chunks`, the
rows :mod:`videoforge.jobs.parts`, the final step :mod:`stitch`).

- **The parent's run** (:func:`plan_chunks`, then :func:`run_parent`): probe the source
  and read its keyframes; when the video is long enough, cut the parts by stream copy,
  store them under ``outputs/{job}/parts/``, write them as jobs and send their
  messages; then encode what every part shares, once for the whole video (each audio
  track's HLS rendition, the storyboard, thumbnail, preview, text tracks), store it, and
  give up the claim: the job waits ``PROCESSING`` for its parts.
- **A part's run** (:func:`run_part`): the ladder's rungs (video only) on its span of
  the timeline, stored under the *parent's* outputs with per-part names
  (``hls/{q}/p0003_seg_00001.m4s``; its playlist and init segment under
  ``parts/p0003/``, the first part's init as the rung's ``init.mp4``), then completed,
  counted on the parent; the last one sends the stitch message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from videoforge.infra import tracing
from videoforge.infra.db import session_scope
from videoforge.infra.storage.keys import output_key
from videoforge.jobs import parts as job_parts
from videoforge.jobs import runs
from videoforge.jobs.events import publish
from videoforge.jobs.models import Job
from videoforge.messages import JobMessage, JobStatus
from videoforge.processor import ffmpeg, runner
from videoforge.processor.audio import Loudness, plan_audio
from videoforge.processor.chunks import (
    PARTS_DIR,
    PLAN_KEY,
    SHARED_KEY,
    PartPlan,
    Shared,
    cut_args,
    cut_input_options,
    part_args,
    plan_parts,
    probe_from_dict,
    shared_args,
)
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, MediaRejected, Tool
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.passes import (
    extract_subtitles,
    measure_loudness,
    run_stills,
    stills_argv,
    tool_failure,
)
from videoforge.processor.probe import ProbeResult, probe_file
from videoforge.processor.progress import Progress
from videoforge.processor.progressive import seal_playlists
from videoforge.processor.remux import keyframe_scan_args, parse_keyframe_scan
from videoforge.processor.results import list_outputs
from videoforge.processor.run import ClaimLost, JobRun, StopReason, WorkerContext
from videoforge.processor.stills import plan_stills
from videoforge.processor.storing import JobOutputs
from videoforge.processor.storyboard import STORYBOARD_DIR, plan_storyboard
from videoforge.processor.subtitles import SUBTITLES_DIR, plan_subtitles

log = structlog.get_logger("videoforge.processor.parts")

S = JobStatus


def job_config(ctx: WorkerContext, job: Job) -> ProcessingConfig:
    """The worker's config with the job's own choices; a chunked job never remuxes (its
    parts' rungs are all encoded, on the one keyframe grid)."""
    return ctx.config().with_overrides(
        loudness_normalization=job.loudness_normalization, remux_max_gop_seconds=0.0
    )


def ladder_for(probe: ProbeResult, config: ProcessingConfig) -> list[PlannedRendition]:
    """The rungs every part encodes, and the stitch joins: those of an unchunked run."""
    return plan_ladder(
        probe.width,
        probe.height,
        probe.fps,
        config.rungs,
        max_fps=config.max_fps,
        cascade=config.cascade_scaling,
    )


# --------------------------------------------------------------------- the parent


@dataclass(frozen=True)
class Split:
    """A video to encode in parts: its probe, the source's first timestamp (the origin of
    the ladder's timeline), the parts, and the longest gap between source keyframes."""

    probe: ProbeResult
    origin: float
    parts: list[PartPlan]
    longest_gop: float


async def plan_chunks(
    ctx: WorkerContext, run: JobRun, job: Job, source: Path, workdir: Path
) -> Split | ProbeResult | None:
    """How this job's video is split; when it is encoded in one piece (too short,
    keyframes too far apart or unreadable), the probe made to decide, for the pipeline
    to use instead of probing again; None when chunking is off."""
    config = job_config(ctx, job)
    if config.chunk_min_seconds <= 0:
        return None
    probe = await tracing.traced(
        "probe", probe_file(source, config, cwd=workdir, cancel=run.cancel)
    )
    if probe.duration <= config.chunk_min_seconds:
        return probe
    argv = ffmpeg.build_argv(
        config, Tool.FFPROBE, inputs=[MediaInput(source)], args=keyframe_scan_args()
    )
    try:
        result = await runner.run_tool(
            argv,
            cwd=workdir,
            time_limit=config.probe_timeout,
            config=config,
            cancel=run.cancel,
            max_stdout_bytes=64 * 1024 * 1024,
        )
    except MediaRejected:
        return probe  # the scan could not finish: encoded in one piece
    text = result.stdout.decode("ascii", "replace")
    scan = parse_keyframe_scan(text) if result.returncode == 0 else None
    if scan is None:
        return probe
    planned = plan_parts(probe.duration, scan.keyframes, config)
    if planned is None:
        return probe
    gaps = [b - a for a, b in itertools.pairwise([*scan.keyframes, probe.duration])]
    return Split(probe, _start_time(text), planned, max(gaps, default=probe.duration))


def _start_time(scan_text: str) -> float:
    """The file's start time, the origin of the keyframe scan's (and the ladder's) times."""
    for line in scan_text.splitlines():
        fields = line.strip().split(",")
        if fields[0] == "format" and len(fields) >= 2:
            try:
                return float(fields[1])
            except ValueError:
                return 0.0
    return 0.0


async def run_parent(
    ctx: WorkerContext,
    run: JobRun,
    job: Job,
    source: Path,
    workdir: Path,
    split: Split,
) -> None:
    """Cut and hand out the parts, encode what they share, then wait for them."""
    probe, origin, plan = split.probe, split.origin, split.parts
    config = job_config(ctx, job)
    storage = ctx.infra.storage
    cuts = workdir / PARTS_DIR
    await asyncio.to_thread(cuts.mkdir, exist_ok=True)
    for part in plan:
        target = workdir / part.source_key()
        argv = ffmpeg.build_argv(
            config,
            Tool.FFMPEG,
            inputs=[MediaInput(source, cut_input_options(part))],
            args=cut_args(part, target),
        )
        result = await runner.run_tool(
            argv, cwd=workdir, time_limit=config.transcode_timeout, config=config, cancel=run.cancel
        )
        if result.returncode != 0:
            raise tool_failure(result, argv, default="corrupt_media")
        await run.guard(
            storage.put_file(
                output_key(job.id, part.source_key()), target, content_type="video/mp4"
            )
        )
    document = {"origin": origin, "probe": probe.to_dict(), "parts": [asdict(p) for p in plan]}
    await run.guard(
        storage.put_bytes(
            output_key(job.id, PLAN_KEY),
            json.dumps(document).encode(),
            content_type="application/json",
        )
    )
    specs = [
        job_parts.PartSpec(p.index, p.start, p.end, output_key(job.id, p.source_key()))
        for p in plan
    ]
    async with session_scope(ctx.infra.sessions) as session:
        ids = await job_parts.create_parts(session, job.id, token=run.token, parts=specs)
    if ids is None:
        raise ClaimLost()
    for part_id in ids:
        await ctx.infra.queues.jobs.send(JobMessage(job_id=part_id).dumps())
    log.info("job_split", parts=len(ids))

    await _shared(ctx, run, job, source, workdir, split, config)
    async with session_scope(ctx.infra.sessions) as session:
        ready = await job_parts.release_parent(session, job.id, token=run.token)
    if ready is None:
        raise ClaimLost()
    if ready:
        await send_stitch(ctx, job.id)
    await ctx.delivery.delete(run.message)


async def send_stitch(ctx: WorkerContext, parent_id: uuid.UUID) -> None:
    """The message that has a worker stitch the parts (sent once, by whoever finished
    last; the claim turns a duplicate into a no-op)."""
    await ctx.infra.queues.jobs.send(JobMessage(job_id=parent_id).dumps())
    log.info("stitch_sent", parent_id=str(parent_id))


async def _shared(
    ctx: WorkerContext,
    run: JobRun,
    job: Job,
    source: Path,
    workdir: Path,
    split: Split,
    config: ProcessingConfig,
) -> None:
    """Every audio track once for the whole video, the storyboard, the stills and the
    text tracks: stored under the parent's outputs, with ``shared.json``.

    The storyboard is the one thing here that needs the picture: when the source has a
    keyframe at least every storyboard interval, only its keyframes are decoded (each
    tile is then the last keyframe before its time, at most one interval early) rather
    than every frame a second time after the parts."""
    probe = split.probe
    outdir = workdir / "out"
    await asyncio.to_thread(outdir.mkdir, exist_ok=True)
    notes: list[dict[str, object]] = []
    measured: dict[int, Loudness] = {}
    if probe.audio_tracks and config.loudness_normalization:
        measured, _ = await measure_loudness(source, outdir, probe, config, run.cancel, notes)
    audio = plan_audio(probe.audio_tracks, measured, config)
    storyboard = plan_storyboard(probe.duration, probe.width, probe.height, config)
    for folder in (*(a.hls_dir for a in audio), SUBTITLES_DIR, STORYBOARD_DIR, PARTS_DIR):
        (outdir / folder).mkdir(parents=True, exist_ok=True)
    keyframes_only = split.longest_gop <= storyboard.interval + 1e-6
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source, ("-skip_frame:v", "nokey") if keyframes_only else ())],
        args=shared_args(probe, config, audio, storyboard),
    )
    result = await runner.run_tool(
        argv,
        cwd=outdir,
        time_limit=config.transcode_timeout,
        config=config,
        cancel=run.cancel,
        max_output_bytes=config.max_output_bytes,
    )
    if result.returncode != 0:
        raise tool_failure(result, argv, default="corrupt_media")
    await asyncio.to_thread(seal_playlists, outdir, [a.playlist_key for a in audio])
    subtitles, subtitle_notes = plan_subtitles(probe.subtitle_tracks, config)
    notes += subtitle_notes
    if subtitles:
        subtitles, _ = await extract_subtitles(
            source, outdir, subtitles, config, run.cancel, notes, config.transcode_timeout
        )
    stills = plan_stills(probe, config)
    await run_stills(
        stills_argv(source, stills, probe, config),
        outdir,
        config,
        run.cancel,
        config.transcode_timeout,
        fallback=stills_argv(source, replace(stills, candidates=()), probe, config),
    )
    shared = Shared(probe, measured, tuple(s.track.index for s in subtitles), notes)
    (outdir / SHARED_KEY).write_text(shared.dumps())
    await run.guard(JobOutputs(ctx.infra.storage, job.id).store_rest(list_outputs(outdir)))


# --------------------------------------------------------------------- a part


async def run_part(ctx: WorkerContext, run: JobRun, job: Job, source: Path, workdir: Path) -> None:
    """Encode this part's span of every rung, store it under the parent, complete."""
    assert job.parent_id is not None
    assert job.part_index is not None
    storage = ctx.infra.storage
    document: dict[str, Any] = json.loads(
        await run.guard(storage.get_bytes(output_key(job.parent_id, PLAN_KEY)))
    )
    part = PartPlan(**document["parts"][job.part_index])
    probe = probe_from_dict(document["probe"])
    config = job_config(ctx, job)
    renditions = ladder_for(probe, config)
    outdir = workdir / "out"
    for rendition in renditions:
        (outdir / rendition.hls_dir).mkdir(parents=True, exist_ok=True)
    span = (part.end if part.end is not None else probe.duration) - part.start

    async def on_progress(value: int) -> None:
        try:
            change = await run.write(ctx, job_parts.part_progress, progress=value)
        except Exception as exc:
            # Progress is advisory; a database hiccup must not fail a transcode.
            log.warning("progress_write_failed", error=str(exc))
            return
        if change is None:
            run.stop(StopReason.CLAIM_LOST)

    progress = Progress(on_progress)

    async def on_time(seconds: float) -> None:
        await progress.report(100 * min(1.0, max(0.0, seconds - part.start) / max(span, 1e-3)))

    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=part_args(part, renditions, probe, config, document["origin"]),
        progress=True,
    )
    result = await runner.run_tool(
        argv,
        cwd=outdir,
        time_limit=config.transcode_timeout,
        config=config,
        cancel=run.cancel,
        on_progress_time=on_time,
        max_output_bytes=config.max_output_bytes,
    )
    if result.returncode != 0:
        raise tool_failure(result, argv, default="corrupt_media")
    await asyncio.to_thread(_name_part_files, outdir, renditions, part)
    run.check()
    await run.step(ctx, runs.advance, source=S.PROCESSING, target=S.UPLOADING)
    await run.guard(JobOutputs(storage, job.parent_id).store_rest(list_outputs(outdir)))
    async with session_scope(ctx.infra.sessions) as session:
        done = await job_parts.complete_part(session, job.id, token=run.token)
    if done is None:
        raise ClaimLost()
    for event in done.change.also:
        await publish(ctx.infra.queues, event)
    log.info("part_completed", part=part.index, ready=done.ready)
    if done.ready:
        await send_stitch(ctx, job.parent_id)
    await ctx.delivery.delete(run.message)


def _name_part_files(outdir: Path, renditions: list[PlannedRendition], part: PartPlan) -> None:
    """Give the part's files their names under the parent: segments ``{name}_seg_*``
    beside the other parts', the playlist (naming them) and the init segment under
    ``parts/{name}/``; the first part's init is the rung's ``init.mp4``."""
    own = outdir / PARTS_DIR / part.name
    own.mkdir(parents=True, exist_ok=True)
    for rendition in renditions:
        folder = outdir / rendition.hls_dir
        renamed: dict[str, str] = {}
        for segment in sorted(folder.glob("seg_*.m4s")):
            new = f"{part.name}_{segment.name}"
            segment.rename(folder / new)
            renamed[segment.name] = new
        playlist = outdir / rendition.playlist_key
        lines = [renamed.get(line.strip(), line) for line in playlist.read_text().splitlines()]
        (own / f"{rendition.quality}.m3u8").write_text("\n".join(lines) + "\n")
        playlist.unlink()
        init = folder / "init.mp4"
        if part.index != 0:
            init.rename(own / f"{rendition.quality}_init.mp4")


__all__ = ["job_config", "ladder_for", "plan_chunks", "run_parent", "run_part", "send_stitch"]

"""The steps of one run, in order: download, transcode, upload, complete.

Each step is awaited under :meth:`JobRun.guard` where it can take long, so a cancel, a
lost claim or a shutdown stops it within a heartbeat. The job row moves between steps
through :meth:`JobRun.step` (``DOWNLOADING -> PROCESSING -> UPLOADING -> COMPLETED``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from videoforge.infra import tracing
from videoforge.infra.storage.keys import import_key, output_key
from videoforge.jobs import runs
from videoforge.jobs.models import AssetType, Job
from videoforge.jobs.service import is_url_source
from videoforge.messages import JobStatus, Playable, resolution
from videoforge.processor import publisher
from videoforge.processor.fetch import fetch_to_file
from videoforge.processor.metrics import JOBS_FINISHED, TRANSCODE_SECONDS
from videoforge.processor.parts import Split, plan_chunks, run_parent, run_part
from videoforge.processor.resources import LocalResourceError
from videoforge.processor.run import JobRun, StopReason, WorkerContext
from videoforge.processor.stitch import remove_parts, stitch
from videoforge.processor.storing import JobOutputs

if TYPE_CHECKING:
    from videoforge.processor.probe import ProbeResult
    from videoforge.processor.results import Output, PipelineResult

log = structlog.get_logger("videoforge.processor.steps")

S = JobStatus


async def run_steps(ctx: WorkerContext, run: JobRun, job: Job, workdir: Path) -> None:
    """Download, transcode, upload and complete ``job``; the message is deleted at the end.

    A chunked job (:mod:`.parts`) takes other paths: its first run splits it, each part
    is a run of its own, and the run that stitches them completes it here."""
    if job.parent_id is None and job.parts_total is not None:
        with tracing.span("stitch"):
            result, stored = await stitch(ctx, run, job, workdir)
        await _finish(ctx, run, result, stored)
        await remove_parts(ctx, job)
        return
    source = workdir / "source"
    with tracing.span("download"):
        source_key = await download(ctx, run, job, source)
    run.check()
    change = await run.step(
        ctx,
        runs.advance,
        source=S.DOWNLOADING,
        target=S.PROCESSING,
        values={"source_key": source_key} if source_key else None,
    )

    if job.parent_id is not None:
        with tracing.span("part"):
            await run_part(ctx, run, change.job, source, workdir)
        return
    stored = JobOutputs(ctx.infra.storage, job.id)
    with tracing.span("transcode"):
        # The chunking decision's probe is the pipeline's: one probe either way.
        planned = await plan_chunks(ctx, run, change.job, source, workdir)
        if not isinstance(planned, Split):
            result = await transcode(ctx, run, change.job, source, workdir, stored, probe=planned)
    if isinstance(planned, Split):
        with tracing.span("split", parts=len(planned.parts)):
            await run_parent(ctx, run, change.job, source, workdir, planned)
        return
    await _finish(ctx, run, result, stored)


async def _finish(
    ctx: WorkerContext, run: JobRun, result: PipelineResult, stored: JobOutputs
) -> None:
    """Upload what is not stored yet, record the assets and facts, complete."""
    run.check()
    change = await run.step(
        ctx, runs.advance, source=S.PROCESSING, target=S.UPLOADING, values={"progress": 100}
    )

    with tracing.span("upload", outputs=len(result.outputs)):
        await run.guard(upload(result.outputs, stored))
    run.check()
    await run.step(
        ctx,
        runs.complete,
        assets=asset_records(change.job, result.outputs),
        facts=_facts(change.job, result),
        event_fields=publisher.completed_fields(change.job, result),
    )
    JOBS_FINISHED.labels(state=str(S.COMPLETED)).inc()
    log.info("job_completed", outputs=len(result.outputs))
    await ctx.delivery.delete(run.message)


async def _check_room(ctx: WorkerContext, run: JobRun, source_size: int | None) -> None:
    """Decline the job (:class:`LocalResourceError`) unless there is room; what the
    check found stays on the run for the failure path."""
    try:
        run.grant = await ctx.disk.check(
            run.job_id, source_size, others_reserved=ctx.reserved_by_others(run)
        )
    except LocalResourceError as exc:
        if exc.needed is not None and exc.free is not None:
            run.room = (exc.needed, exc.free)
        raise
    run.room = (run.grant.needed, run.grant.available)


async def download(ctx: WorkerContext, run: JobRun, job: Job, target: Path) -> str | None:
    """Bring the source to ``target``; for an import, keep it under ``originals/``.

    First make sure there is room for the job: an upload's size comes from the object
    store, an import's from its ``Content-Length`` when the server sends one (checked
    again once the headers arrive).
    """
    storage = ctx.infra.storage
    if not is_url_source(job.input_source):
        info = await run.guard(storage.head(job.input_source))
        await _check_room(ctx, run, info.size if info is not None else None)
        await run.guard(storage.get_file(job.input_source, target))
        log.info("source_downloaded")
        return None
    await _check_room(ctx, run, None)

    async def on_length(length: int) -> None:
        await _check_room(ctx, run, length)

    fetched = await run.guard(
        fetch_to_file(
            job.input_source,
            target,
            settings=ctx.settings,
            allow_addresses=ctx.fetch_allow,
            on_length=on_length,
        )
    )
    key = import_key(job.user_id, job.video_id, job.id)
    # The remote server's word on the type is only kept when it claims a video.
    declared = (fetched.content_type or "").split(";")[0].strip().lower()
    content_type = declared if declared.startswith("video/") else "application/octet-stream"
    await run.guard(
        storage.put_file(
            key,
            target,
            content_type=content_type,
            metadata={"job_id": str(job.id), "source": "import"},
        )
    )
    log.info("source_imported", key=key)
    return key


async def transcode(
    ctx: WorkerContext,
    run: JobRun,
    job: Job,
    source: Path,
    workdir: Path,
    stored: JobOutputs | None = None,
    *,
    probe: ProbeResult | None = None,
) -> PipelineResult:
    """Run the media pipeline (outputs under ``workdir/out``) with the job's own
    choices; every progress value it reports (already throttled, see
    :mod:`.progress`) is written and published. ``probe``: the source's, when the
    chunking decision already made it (the pipeline then does not probe again).

    With ``stored``, the segments the ladder finishes are stored as it goes
    (:mod:`.storing`); the progress event that follows the first watchable ones is
    written at once, and every progress event then says what plays (``playable``).
    """
    from videoforge.processor.pipeline import process_file

    last = 0

    async def on_progress(value: int) -> None:
        nonlocal last
        last = value
        playable = stored.playable if stored is not None else None
        try:
            change = await run.write(
                ctx,
                runs.record_progress,
                progress=value,
                event_fields={"playable": playable} if playable is not None else None,
            )
        except Exception as exc:
            # Progress is advisory; a database hiccup must not fail a transcode.
            log.warning("progress_write_failed", error=str(exc))
            return
        if change is None:
            run.stop(StopReason.CLAIM_LOST)

    async def on_playable(_: Playable) -> None:
        log.info("job_playable")
        await on_progress(last)

    if stored is not None:
        stored.on_playable = on_playable

    started = time.monotonic()
    try:
        return await process_file(
            source,
            workdir,
            ctx.config(),
            on_progress=on_progress,
            cancel=run.cancel,
            loudness_normalization=job.loudness_normalization,
            on_segments=stored.on_segments if stored is not None else None,
            probe=probe,
        )
    finally:
        TRANSCODE_SECONDS.observe(time.monotonic() - started)


async def upload(outputs: list[Output], stored: JobOutputs) -> None:
    """Store every output the ladder did not store as it went (media first, playlists
    and manifests last; one failure cancels the rest and is raised)."""
    count = await stored.store_rest(outputs)
    log.info("outputs_uploaded", count=count, stored_while_encoding=len(stored.stored))


def asset_records(job: Job, outputs: list[Output]) -> list[runs.AssetRecord]:
    """The outputs worth an asset row: HLS media segments are not recorded one by one (a
    long video has thousands); the playlists are, and everything lives under the job's
    prefix anyway."""
    records = []
    for output in outputs:
        key = output_key(job.id, output.rel_key)
        if output.kind == "hls" and not key.endswith(".m3u8"):
            continue
        records.append(
            runs.AssetRecord(
                asset_type=AssetType(output.kind),  # an output's kind is its asset type
                key=key,
                size=output.size,
                quality=output.quality,
            )
        )
    return records


def _facts(job: Job, result: PipelineResult) -> dict[str, object]:
    """The media facts recorded on the job row at completion: the event's, under the
    job table's names, and the source's bit rate."""
    probe = result.probe
    facts = probe.facts()
    return {
        "metadata_s3_key": output_key(job.id, result.metadata),
        "duration": facts["duration"],
        "width": facts["width"],
        "height": facts["height"],
        "video_codec": facts["video_codec"],
        "audio_codec": facts["audio_codec"],
        "original_size": facts["file_size"],
        "original_bitrate": probe.bit_rate,
        "resolution": resolution(probe.width, probe.height),
    }


__all__ = ["asset_records", "download", "run_steps", "transcode", "upload"]

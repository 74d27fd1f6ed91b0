"""The pipeline's runs beside the ladder: the stills, the keyframe scan for the remux
decision, loudness measurement and subtitle extraction, and what a failed run means."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from videoforge.infra import tracing
from videoforge.processor import ffmpeg, runner
from videoforge.processor.audio import Loudness, measure_args, parse_measurements
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, MediaRejected, Tool, ToolError
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.probe import ProbeResult, classify_stderr
from videoforge.processor.remux import (
    RemuxDecision,
    RemuxReason,
    decide_remux,
    keyframe_scan_args,
    parse_keyframe_scan,
)
from videoforge.processor.stills import THUMBNAIL_CANDIDATES_DIR, StillsPlan, stills_args
from videoforge.processor.subtitles import (
    SUBTITLE_DECODERS,
    SubtitleRendition,
    check_extracted,
    dropped,
    extract_args,
)

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


def tool_failure(result: runner.RunResult, argv: list[str], default: str) -> Exception:
    tail = result.stderr_tail.lower()
    if result.returncode < 0 or any(marker in tail for marker in _NOT_THE_MEDIA):
        return ToolError(argv, result.returncode, result.stderr_tail)
    return classify_stderr(result.stderr_tail, default=default)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def stills_argv(
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


async def run_stills(
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
            result = await runner.run_tool(
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
        raise tool_failure(result, argv if fallback is None else fallback, default="corrupt_media")


async def scan_keyframes(
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
        result = await runner.run_tool(
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


async def measure_loudness(
    source: Path,
    outdir: Path,
    probe: ProbeResult,
    config: ProcessingConfig,
    cancel: asyncio.Event | None,
    notes: list[dict[str, object]],
) -> tuple[dict[int, Loudness], float]:
    """The EBU R128 meter over every audio track, in one audio-only run.

    Measuring is never the reason a job fails: a track that cannot be measured is
    encoded as it is, with a note (if its audio is really broken, the ladder says so).
    """
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=measure_args(probe.audio_tracks, config),
        log_level="info",  # the meters report at the info level, on stderr
    )
    # The reports come last; keep enough of stderr for one per track.
    report_config = config.with_overrides(
        stderr_tail_bytes=max(config.stderr_tail_bytes, 2048 * (len(probe.audio_tracks) + 4))
    )
    result = await runner.run_tool(
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


async def extract_subtitles(
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
        inputs = [MediaInput(source, decoders=SUBTITLE_DECODERS)]
        argv = ffmpeg.build_argv(config, Tool.FFMPEG, inputs=inputs, args=extract_args(batch))
        result = await runner.run_tool(
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

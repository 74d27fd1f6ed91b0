"""The last step of a chunked job (issue 15): the parts' outputs made into the outputs of
one ordinary job.

Everything is already under the parent's ``outputs/{job}/``: the shared audio, stills
and text tracks (the parent's own run), and every part's segments of every rung. The
stitch run reads them back and writes:

- each rung's media playlist, listing every part's segments in order under one
  ``EXT-X-MAP`` (the first part's init segment, the rung's ``init.mp4``: every part is
  encoded with the same settings, which is checked on their codec configuration), with
  no discontinuity: the segments carry the whole video's timestamps;
- each rung's MP4 download, joined by stream copy: the init segment and every segment
  of the rung in order are one fragmented MP4 already, muxed with the default audio
  track's (encoded once for the whole video) into a ``+faststart`` MP4;
- the master playlist, the DASH manifest (the same segments and init) and the metadata,
  once, by :func:`~videoforge.processor.packaging.finish` as for any job.

The parts' sources and their playlists (``parts/``) are deleted once the job completed.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import structlog

from videoforge.infra.storage.keys import output_key, output_prefix
from videoforge.jobs.models import Job
from videoforge.processor import ffmpeg, runner
from videoforge.processor.audio import AudioRendition, default_rendition, plan_audio
from videoforge.processor.chunks import PARTS_DIR, PLAN_KEY, SHARED_KEY, PartPlan, Shared
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, MediaRejected, Tool
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.packaging import (
    Produced,
    check_complete,
    collect_audio,
    collect_variants,
    finish,
)
from videoforge.processor.parts import job_config, ladder_for
from videoforge.processor.passes import tool_failure
from videoforge.processor.results import PipelineResult
from videoforge.processor.run import JobRun, WorkerContext
from videoforge.processor.storing import JobOutputs
from videoforge.processor.storyboard import plan_storyboard
from videoforge.processor.subtitles import SubtitleRendition

log = structlog.get_logger("videoforge.processor.stitch")

#: ffmpeg's AAC encoder starts every track with this many samples of priming.
AAC_PRIMING = 1024
#: Every audio rendition's sample rate (audio.py resamples to it).
AUDIO_RATE = 48_000


async def stitch(
    ctx: WorkerContext, run: JobRun, job: Job, workdir: Path
) -> tuple[PipelineResult, JobOutputs]:
    """Fetch the parts' and the shared outputs, join them; returns the job's result and
    what of it is in storage already (only the new files are stored again)."""
    storage = ctx.infra.storage
    outdir = workdir / "out"
    await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
    stored = JobOutputs(storage, job.id)
    prefix = output_prefix(job.id)
    async for info in storage.list(prefix):
        rel = info.key[len(prefix) :]
        if rel.startswith(f"{PARTS_DIR}/") and rel.count("/") == 1 and rel.endswith(".mp4"):
            continue  # a part's source: not needed any more
        target = outdir / rel
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await run.guard(storage.get_file(info.key, target))
        stored.stored[rel] = info.size
    shared = Shared.loads((outdir / SHARED_KEY).read_text())
    plan = [PartPlan(**p) for p in json.loads((outdir / PLAN_KEY).read_text())["parts"]]
    config = job_config(ctx, job)
    probe = shared.probe
    renditions = ladder_for(probe, config)
    audio = plan_audio(probe.audio_tracks, shared.loudness, config)
    await asyncio.to_thread(write_playlists, outdir, renditions, plan)
    for rendition in renditions:
        await join_mp4(outdir, workdir, rendition, default_rendition(audio), config, run)
    stats = await asyncio.to_thread(collect_variants, outdir, renditions)
    audio_stats = await asyncio.to_thread(collect_audio, outdir, audio)
    check_complete(probe, [*stats, *audio_stats], "")
    await asyncio.to_thread(shutil.rmtree, outdir / PARTS_DIR)
    subtitles = [SubtitleRendition(t) for t in probe.subtitle_tracks if t.index in shared.subtitles]
    notes = [
        *shared.notes,
        {
            "kind": "chunked",
            "parts": len(plan),
            "detail": f"encoded as {len(plan)} parts of about {config.chunk_seconds:g} s",
        },
    ]
    produced = Produced(
        renditions=list(zip(renditions, stats, strict=True)),
        audio=list(zip(audio, audio_stats, strict=True)),
        subtitles=subtitles,
        storyboard=plan_storyboard(probe.duration, probe.width, probe.height, config),
        notes=notes,
    )
    result = await asyncio.to_thread(finish, outdir, probe, produced, config)
    log.info("job_stitched", parts=len(plan))
    return result, stored


async def remove_parts(ctx: WorkerContext, job: Job) -> None:
    """Best effort: the parts' sources and playlists, once the job completed (the
    sweep's orphan pass and the job's deletion take whatever is left)."""
    try:
        await ctx.infra.storage.delete_prefix(output_key(job.id, f"{PARTS_DIR}/"))
    except Exception as exc:
        log.warning("parts_cleanup_failed", error=str(exc))


def _segments(playlist: Path) -> list[tuple[float, str]]:
    """(duration, URI) of each segment of a media playlist."""
    found: list[tuple[float, str]] = []
    duration: float | None = None
    for line in playlist.read_text().splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            found.append((duration, line))
            duration = None
    return found


def _codec_config(init: Path) -> bytes:
    """The ``avcC`` box of an init segment: what a decoder needs to be the same."""
    data = init.read_bytes()
    at = data.find(b"avcC")
    if at < 4:
        raise MediaRejected("corrupt_media", f"no codec configuration in {init.name}")
    size = int.from_bytes(data[at - 4 : at], "big")
    return data[at - 4 : at - 4 + size]


def write_playlists(
    outdir: Path, renditions: Sequence[PlannedRendition], plan: Sequence[PartPlan]
) -> None:
    """Every rung's VOD playlist over all parts' segments, in order, one init segment."""
    for rendition in renditions:
        init = outdir / rendition.init_key
        expected = _codec_config(init)
        segments: list[tuple[float, str]] = []
        for part in plan:
            own = outdir / PARTS_DIR / part.name
            if part.index != 0 and _codec_config(own / f"{rendition.quality}_init.mp4") != expected:
                raise MediaRejected(
                    "corrupt_media", f"part {part.index} of {rendition.quality} differs"
                )
            listed = _segments(own / f"{rendition.quality}.m3u8")
            if not listed:
                raise MediaRejected("corrupt_media", f"part {part.index} has no segments")
            segments += listed
        longest = max(duration for duration, _ in segments)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{math.ceil(longest - 1e-3)}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            '#EXT-X-MAP:URI="init.mp4"',
        ]
        for duration, uri in segments:
            lines += [f"#EXTINF:{duration:.6f},", uri]
        lines.append("#EXT-X-ENDLIST")
        (outdir / rendition.playlist_key).write_text("\n".join(lines) + "\n")


def _join_bytes(outdir: Path, playlist_key: str, init_key: str, target: Path) -> None:
    """An init segment and its playlist's segments, in order: one fragmented MP4."""
    base = (outdir / playlist_key).parent
    with target.open("wb") as out:
        for name in [
            outdir / init_key,
            *(base / uri for _, uri in _segments(outdir / playlist_key)),
        ]:
            with name.open("rb") as part:
                shutil.copyfileobj(part, out)


async def join_mp4(
    outdir: Path,
    workdir: Path,
    rendition: PlannedRendition,
    track: AudioRendition | None,
    config: ProcessingConfig,
    run: JobRun,
) -> None:
    """The rung's MP4 download: its joined segments and the default audio track's, by
    stream copy, ``+faststart``."""
    joined = workdir / "joined"
    await asyncio.to_thread(joined.mkdir, exist_ok=True)
    video = joined / f"{rendition.quality}.mp4"
    await asyncio.to_thread(_join_bytes, outdir, rendition.playlist_key, rendition.init_key, video)
    inputs = [MediaInput(video)]
    maps = ["-map", "0:v:0"]
    if track is not None:
        sound = joined / f"{track.hls_dir.replace('/', '_')}.mp4"
        if not sound.exists():
            await asyncio.to_thread(_join_bytes, outdir, track.playlist_key, track.init_key, sound)
        # The encoder's priming samples: the ladder's MP4s start their audio that much
        # before 0 (an edit list), its HLS renditions at 0; put them back where they were.
        inputs.append(MediaInput(sound, ("-itsoffset", f"{-AAC_PRIMING / AUDIO_RATE:.6f}")))
        maps += ["-map", "1:a:0"]
    (outdir / rendition.mp4_key).parent.mkdir(parents=True, exist_ok=True)
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=inputs,
        args=[*maps, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", rendition.mp4_key],
    )
    result = await runner.run_tool(
        argv, cwd=outdir, time_limit=config.transcode_timeout, config=config, cancel=run.cancel
    )
    if result.returncode != 0:
        raise tool_failure(result, argv, default="corrupt_media")
    video.unlink()


__all__ = ["join_mp4", "remove_parts", "stitch", "write_playlists"]

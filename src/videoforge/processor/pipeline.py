"""The media pipeline: probe, plan, transcode once, package, stills, metadata.

:func:`process_file` turns one local source into every output of a job under
``workdir/out``, named by deterministic relative keys (``hls/master.m3u8``,
``hls/720p/index.m3u8``, ``mp4/720p.mp4``, ``thumbnail.jpg``, ``preview.gif``,
``metadata.json``). The worker uploads each as ``outputs/{job_id}/{rel_key}``; playlists
only use relative URIs, so they work wherever they are stored.

Failures caused by the media raise :class:`MediaRejected` (permanent, with a stable
code); :class:`PipelineCancelled` when the cancel event is set;
:class:`~videoforge.processor.resources.LocalResourceError` when the machine failed the
run (disk full, quota, read-only or failing disk: raised by ``run_tool`` as soon as
ffmpeg says so, whatever its exit code). Anything else (ffmpeg killed by the OS, an
``OSError`` of our own writes) propagates as an ordinary exception: it may be transient.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from videoforge.messages import Rendition
from videoforge.processor import ffmpeg
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import (
    MediaInput,
    MediaRejected,
    PipelineCancelled,
    Tool,
    ToolError,
)
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.probe import ProbeResult, classify_stderr, probe_file
from videoforge.processor.transcode import (
    MASTER_PLAYLIST,
    METADATA,
    PREVIEW,
    THUMBNAIL,
    VariantStats,
    ladder_args,
    master_playlist,
    plan_stills,
    stills_args,
    variant_stats,
)
from videoforge.settings import Settings

__all__ = [
    "MediaRejected",
    "Output",
    "PipelineCancelled",
    "PipelineResult",
    "ProbeResult",
    "RenditionInfo",
    "process_file",
    "transcode_file_cli",
]

OutputKind = Literal["video", "hls", "thumbnail", "gif", "metadata"]
ProgressCallback = Callable[[int], Awaitable[None]]

# Share of the progress bar each step gets; the ladder is nearly all of the work.
_PROBED = 2
_LADDER_END = 94
_STILLS_END = 98
_PROGRESS_KEEPALIVE = 5.0  # seconds

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

    @property
    def total_size(self) -> int:
        return sum(output.size for output in self.outputs)


class _Progress:
    """Reports whole percentages that never go down.

    A new value is reported at once; an unchanged one is repeated every
    ``_PROGRESS_KEEPALIVE`` seconds, so a long encode whose percentage moves slowly (1 %
    of a 4 h video is minutes) still shows that it is alive.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1
        self._last_at = 0.0

    async def report(self, percent: float) -> None:
        value = max(self._last, 0, min(100, int(percent)))
        now = time.monotonic()
        if self._callback is None:
            return
        if value > self._last or now - self._last_at >= _PROGRESS_KEEPALIVE:
            self._last, self._last_at = value, now
            await self._callback(value)


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
) -> PipelineResult:
    """Probe ``source``, then produce the ladder, HLS, MP4s, stills and metadata.

    Outputs are written under ``workdir / "out"`` (replaced if present, so a retried job
    starts clean). ``on_progress`` receives 0-100, increasing, ending at 100.
    """
    progress = _Progress(on_progress)
    await progress.report(0)
    outdir = await asyncio.to_thread(_fresh_dir, workdir / "out")

    source = await asyncio.to_thread(_neutral_name, source, workdir)
    probe = await probe_file(source, config, cwd=workdir, cancel=cancel)
    await progress.report(_PROBED)
    _check_cancel(cancel)

    renditions = plan_ladder(
        probe.width, probe.height, probe.fps, config.rungs, max_fps=config.max_fps
    )
    await asyncio.to_thread(_make_dirs, outdir, renditions)

    async def ladder_progress(seconds: float) -> None:
        share = min(1.0, seconds / probe.duration)
        await progress.report(_PROBED + share * (_LADDER_END - _PROBED))

    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=ladder_args(renditions, probe, config),
        progress=True,
    )
    result = await ffmpeg.run_tool(
        argv,
        cwd=outdir,
        time_limit=config.transcode_timeout,
        config=config,
        cancel=cancel,
        on_progress_time=ladder_progress,
        watch_dir=outdir,
        max_output_bytes=config.max_output_bytes,
    )
    if result.returncode != 0:
        raise _tool_failure(result, argv, default="corrupt_media")
    await progress.report(_LADDER_END)
    stats = await asyncio.to_thread(_collect_variants, outdir, renditions, probe)
    _check_complete(probe, stats, result.stderr_tail)
    _check_cancel(cancel)

    stills = plan_stills(probe, config)
    stills_argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source, ("-ss", f"{stills.start:g}", "-t", f"{stills.window:g}"))],
        args=stills_args(stills, probe, config),
    )
    remaining = max(1.0, config.transcode_timeout - result.elapsed)
    still_result = await ffmpeg.run_tool(
        stills_argv,
        cwd=outdir,
        time_limit=remaining,
        config=config,
        cancel=cancel,
        watch_dir=outdir,
        max_output_bytes=config.max_output_bytes,
    )
    if still_result.returncode != 0:
        raise _tool_failure(still_result, stills_argv, default="corrupt_media")
    await progress.report(_STILLS_END)
    outputs, infos = await asyncio.to_thread(_finish, outdir, probe, renditions, stats, config)
    await progress.report(100)
    return PipelineResult(
        probe=probe,
        renditions=infos,
        outputs=outputs,
        master_playlist=MASTER_PLAYLIST,
        thumbnail=THUMBNAIL,
        preview=PREVIEW,
        metadata=METADATA,
        output_dir=outdir,
    )


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


def _make_dirs(outdir: Path, renditions: list[PlannedRendition]) -> None:
    for rendition in renditions:
        (outdir / rendition.hls_dir).mkdir(parents=True, exist_ok=True)
    (outdir / "mp4").mkdir(exist_ok=True)


def _finish(
    outdir: Path,
    probe: ProbeResult,
    renditions: list[PlannedRendition],
    stats: list[VariantStats],
    config: ProcessingConfig,
) -> tuple[list[Output], list[RenditionInfo]]:
    """Check the stills, write the master playlist and metadata, list every output."""
    for still in (THUMBNAIL, PREVIEW):
        if not (outdir / still).is_file() or (outdir / still).stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No picture could be decoded from the video.")
    pairs = list(zip(renditions, stats, strict=True))
    (outdir / MASTER_PLAYLIST).write_text(master_playlist(pairs))
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
        for r, s in pairs
    ]
    (outdir / METADATA).write_text(json.dumps(_metadata(probe, infos), indent=2) + "\n")
    outputs = _list_outputs(outdir)
    if sum(output.size for output in outputs) > config.max_output_bytes:
        raise MediaRejected(
            "output_too_large",
            f"The outputs grew beyond the {config.max_output_bytes} byte limit.",
        )
    return outputs, infos


def _collect_variants(
    outdir: Path, renditions: list[PlannedRendition], probe: ProbeResult
) -> list[VariantStats]:
    stats: list[VariantStats] = []
    for rendition in renditions:
        mp4 = outdir / rendition.mp4_key
        if not mp4.is_file() or mp4.stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No video could be decoded from the file.")
        try:
            stats.append(variant_stats(outdir, rendition, probe.has_audio))
        except (OSError, ValueError):
            raise MediaRejected(
                "corrupt_media", "No video could be decoded from the file."
            ) from None
    return stats


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


def _metadata(probe: ProbeResult, renditions: list[RenditionInfo]) -> dict[str, Any]:
    return {
        "version": 1,
        "source": probe.to_dict(),
        "renditions": [asdict(info) for info in renditions],
        "hls_master": MASTER_PLAYLIST,
        "thumbnail": THUMBNAIL,
        "preview": PREVIEW,
    }


_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
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
        elif parts[0] == "mp4":
            kind, quality = "video", path.stem
        elif rel_key == THUMBNAIL:
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
def transcode_file_cli(settings: Settings, input_path: Path, outdir: Path) -> int:
    """``videoforge transcode INPUT OUTDIR``: run the pipeline on a local file.

    Prints each output (key, size) and returns 0; on a refused input prints the reason to
    stderr and returns 3 (2 when the input does not exist).
    """
    input_path = Path(input_path)
    outdir = Path(outdir)
    if not input_path.is_file():
        print(f"error: {input_path} is not a file", file=sys.stderr)
        return 2
    config = ProcessingConfig.from_settings(settings)
    outdir.mkdir(parents=True, exist_ok=True)

    async def report(percent: int) -> None:
        print(f"\rprogress: {percent:3d}%", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix=".vf-transcode-", dir=outdir) as tmp:
        try:
            result = asyncio.run(process_file(input_path, Path(tmp), config, on_progress=report))
        except MediaRejected as exc:
            print(f"\nerror: refused ({exc.code}): {exc.message}", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            print("\ncancelled", file=sys.stderr)
            return 130
        print(file=sys.stderr)
        for output in result.outputs:
            target = outdir / output.rel_key
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(output.path, target)
            print(f"{output.rel_key}\t{output.size}")
    probe = result.probe
    print(
        f"source: {probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.2f} s "
        f"{probe.video_codec}/{probe.audio_codec or '-'}; "
        f"renditions: {', '.join(f'{r.quality} {r.width}x{r.height}' for r in result.renditions)}"
    )
    return 0

"""Benchmark: the single-decode ladder against one ffmpeg per rendition, audio encoded once
against once per rung, and what the storyboard adds.

Generates a 1080p source (testsrc2 + a sine tone per audio track), measures its loudness
once (loudnorm's first pass, timed on its own: the pipeline runs it before the ladder),
then times, side by side and alternating the order each round:

(a) the pipeline's ladder: ONE ffmpeg that decodes the source once, ``split``s it and
    encodes every rendition; each audio track is normalised and encoded ONCE and shared
    by every rung (one ``tee`` output: HLS fMP4 per rung and per track, MP4 per rung);
(b) the same renditions with one ffmpeg each, run one after the other: the source is
    decoded (and its audio normalised and encoded) once per rendition. Encoder settings
    and outputs are identical, because (b) uses the very same argument builder with a
    one-rendition ladder;
(c) the previous layout, in one run: one ``tee`` output per rung, each with its own
    loudnorm and AAC encode of the audio (the cost that encoding audio once removes);
(d) (a) plus the storyboard branch (sprite sheets from the same decode).

Usage::

    .venv/bin/python bench/ladder.py                  # 10 s 1080p30, 3 rounds
    .venv/bin/python bench/ladder.py --seconds 5 --rounds 2 --threads 2

Prints each wall time and the CPU time (user + system) the ffmpeg children used, the
medians and the ratios against (a). On a shared, loaded machine the wall time swings with
the neighbours; the CPU time is the steadier measure of the work saved.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from videoforge.processor import ffmpeg, transcode
from videoforge.processor.audio import (
    AudioRendition,
    default_rendition,
    measure_args,
    normalize_filter,
    parse_measurements,
    plan_audio,
)
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, Tool
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.probe import ProbeResult, probe_file
from videoforge.processor.storyboard import STORYBOARD_DIR, plan_storyboard
from videoforge.processor.transcode import ladder_args


def make_source(path: Path, seconds: float, size: str, fps: int, tracks: int = 1) -> None:
    """A synthetic source with detail and motion (testsrc2) and a tone per audio track."""
    audio = []
    for n in range(tracks):
        audio += ["-f", "lavfi", "-i", f"sine=frequency={440 + 110 * n}:d={seconds}"]
    maps = ["-map", "0:v", *[x for n in range(tracks) for x in ("-map", f"{n + 1}:a")]]
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}", *audio, *maps,
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip


def _fresh(outdir: Path, renditions: list[PlannedRendition], audio: list[AudioRendition]) -> None:
    if outdir.exists():
        shutil.rmtree(outdir)
    for rendition in renditions:
        (outdir / rendition.hls_dir).mkdir(parents=True)
    for track in audio:
        (outdir / track.hls_dir).mkdir(parents=True)
    (outdir / "mp4").mkdir(parents=True)
    (outdir / STORYBOARD_DIR).mkdir(parents=True)


def per_rung_audio_args(
    renditions: list[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: list[AudioRendition],
) -> list[str]:
    """The layout before audio was shared: one tee output per rung, each normalising
    and encoding the default audio track itself (HLS variants then carried audio)."""
    track = default_rendition(audio)
    graph = [
        f"[0:v:0]yadif=deint=interlaced,split={len(renditions)}"
        + "".join(f"[s{i}]" for i in range(len(renditions)))
    ]
    for i, rendition in enumerate(renditions):
        graph.append(f"[s{i}]{transcode._branch_filter(rendition, probe)}[v{i}]")
        if track is not None:
            graph.append(f"[0:a:{track.track.index}]{normalize_filter(track, config)}[ra{i}]")
    args = ["-filter_complex", ";".join(graph), "-map_metadata", "-1"]
    for i, rendition in enumerate(renditions):
        args += ["-map", f"[v{i}]"]
        if track is not None:
            args += ["-map", f"[ra{i}]", *transcode._audio_args(config)]
        hls = (
            f"[f=hls:hls_time={config.hls_segment_seconds:g}:hls_playlist_type=vod:"
            f"hls_segment_type=fmp4:hls_fmp4_init_filename=init.mp4:"
            f"hls_segment_filename={rendition.hls_dir}/seg_%05d.m4s:onfail=abort]"
            f"{rendition.playlist_key}"
        )
        args += [
            *transcode._video_encoder_args(rendition, config),
            "-flags",
            "+global_header",
            "-f",
            "tee",
            f"{hls}|[f=mp4:movflags=+faststart:onfail=abort]{rendition.mp4_key}",
        ]
    return args


async def timed(argv: list[str], outdir: Path, config: ProcessingConfig) -> tuple[float, float]:
    """Run one built argv; returns its wall and CPU time in seconds."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    result = await ffmpeg.run_tool(
        argv, cwd=outdir, time_limit=3600, config=config.with_overrides(stderr_tail_bytes=65536)
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {result.stderr_tail}")
    return elapsed, _children_cpu() - cpu_before


async def run_ladder(
    source: Path,
    outdir: Path,
    renditions: list[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: list[AudioRendition] | None = None,
    *,
    storyboard: bool = False,
    shared_audio: bool = True,
) -> tuple[float, float]:
    """One ffmpeg for ``renditions``; returns its wall and CPU time in seconds."""
    audio = audio or []
    _fresh(outdir, renditions, audio)
    plan = plan_storyboard(probe.duration, probe.width, probe.height, config)
    args = (
        ladder_args(renditions, probe, config, audio, plan if storyboard else None)
        if shared_audio
        else per_rung_audio_args(renditions, probe, config, audio)
    )
    argv = ffmpeg.build_argv(config, Tool.FFMPEG, inputs=[MediaInput(source)], args=args)
    return await timed(argv, outdir, config)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="ffmpeg -threads (0: auto)")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--audio-tracks", type=int, default=1)
    args = parser.parse_args()

    config = ProcessingConfig(threads=args.threads, preset=args.preset)
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(source, args.seconds, args.size, args.fps, args.audio_tracks)
        probe = await probe_file(source, config)
        renditions = plan_ladder(
            probe.width, probe.height, probe.fps, config.rungs, max_fps=config.max_fps
        )
        measure = ffmpeg.build_argv(
            config,
            Tool.FFMPEG,
            inputs=[MediaInput(source)],
            args=measure_args(probe.audio_tracks, config),
            log_level="info",
        )
        result = await ffmpeg.run_tool(
            measure,
            cwd=work,
            time_limit=3600,
            config=config.with_overrides(stderr_tail_bytes=65536),
        )
        measured = parse_measurements(result.stderr_tail)
        audio = plan_audio(probe.audio_tracks, measured, config)
        print(
            f"source: {probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.1f} s, "
            f"{len(audio)} audio track(s); renditions: "
            f"{', '.join(f'{r.quality} {r.width}x{r.height}' for r in renditions)}; "
            f"preset {config.preset}, threads {args.threads or 'auto'}"
        )
        print(f"loudness first pass (all tracks, audio only): wall {result.elapsed:.2f} s")
        variants = {
            "a": "single run, audio once      ",
            "b": "one ffmpeg per rendition    ",
            "c": "single run, audio per rung  ",
            "d": "(a) + storyboard            ",
        }
        wall: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        for round_no in range(args.rounds):
            # Rotate which variant goes first so that warm caches favour none.
            order = list(variants)[round_no % 4 :] + list(variants)[: round_no % 4]
            for variant in order:
                out = work / variant
                if variant == "b":
                    took = used = 0.0
                    for rendition in renditions:
                        one = await run_ladder(source, out, [rendition], probe, config, audio)
                        took, used = took + one[0], used + one[1]
                else:
                    took, used = await run_ladder(
                        source,
                        out,
                        renditions,
                        probe,
                        config,
                        audio,
                        storyboard=variant == "d",
                        shared_audio=variant != "c",
                    )
                wall[variant].append(took)
                cpu[variant].append(used)
                print(f"round {round_no + 1} ({variant}) wall {took:7.2f} s  cpu {used:7.2f} s")
        for variant, label in variants.items():
            print(
                f"({variant}) {label} wall median {statistics.median(wall[variant]):7.2f} s "
                f"[{_fmt(wall[variant])}]  cpu median {statistics.median(cpu[variant]):7.2f} s "
                f"[{_fmt(cpu[variant])}]"
            )
        for name, table in (("wall", wall), ("cpu", cpu)):
            base = statistics.median(table["a"])
            for other in ("b", "c", "d"):
                ratio = statistics.median(table[other]) / base
                print(f"ratio ({other})/(a) {name}: {ratio:.3f}x")
        saved = statistics.median(cpu["c"]) - statistics.median(cpu["a"])
        story = statistics.median(cpu["d"]) - statistics.median(cpu["a"])
        print(f"audio once saves {saved:.2f} s cpu per run; the storyboard costs {story:.2f} s cpu")
    return 0


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

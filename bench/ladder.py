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

Then, each saving of issue 15 on its own, side by side in one run (order alternated):

remux    on a compatible source (1080p30 H.264 High at ~5 Mb/s, 2 s GOP, made with
         libx264 here): (e) the encode-everything ladder against (r) the remuxing one
         (top rung copied, lower rungs keyed on the source's keyframes; its time includes
         the keyframe scan);
cascade  (p) every rung scaled from the source against (k) each lower rung scaled from
         the rung above, with each rung's SSIM against the source scaled straight to its
         size (as the per-rung ladder scales it);
stills   (q) the ladder then the stills run, as before, against (o) the two overlapped.

Usage::

    .venv/bin/python bench/ladder.py                  # 10 s 1080p30, 3 rounds, every section
    .venv/bin/python bench/ladder.py --seconds 5 --rounds 2 --threads 2
    .venv/bin/python bench/ladder.py --sections remux,cascade,stills --seconds 5 --threads 1

Prints each wall time and the CPU time (user + system) the ffmpeg children used, the
medians and the ratios against (a). On a shared, loaded machine the wall time swings with
the neighbours; the CPU time is the steadier measure of the work saved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from videoforge.processor import ffmpeg, runner, transcode
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
from videoforge.processor.remux import (
    RemuxDecision,
    decide_remux,
    keyframe_scan_args,
    parse_keyframe_scan,
)
from videoforge.processor.stills import plan_stills, stills_args, stills_can_overlap
from videoforge.processor.storyboard import STORYBOARD_DIR, plan_storyboard
from videoforge.processor.transcode import ladder_args

SECTIONS = ("decode", "remux", "cascade", "stills")


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


def make_compatible_source(path: Path, seconds: float, size: str, fps: int) -> None:
    """What a phone or an editor exports: H.264 High 4:2:0 at ~5 Mb/s, a 2 s GOP."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
            "-b:v", "5M", "-maxrate", "5.5M", "-bufsize", "11M",
            "-g", str(2 * fps), "-keyint_min", str(2 * fps), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
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
    result = await runner.run_tool(
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
    keyframes: tuple[float, ...] = (),
) -> tuple[float, float]:
    """One ffmpeg for ``renditions``; returns its wall and CPU time in seconds."""
    audio = audio or []
    _fresh(outdir, renditions, audio)
    plan = plan_storyboard(probe.duration, probe.width, probe.height, config)
    args = (
        ladder_args(renditions, probe, config, audio, plan if storyboard else None, keyframes)
        if shared_audio
        else per_rung_audio_args(renditions, probe, config, audio)
    )
    argv = ffmpeg.build_argv(config, Tool.FFMPEG, inputs=[MediaInput(source)], args=args)
    return await timed(argv, outdir, config)


async def scan_keyframes(
    source: Path, work: Path, probe: ProbeResult, top: PlannedRendition, config: ProcessingConfig
) -> tuple[RemuxDecision, float, float]:
    """The pipeline's keyframe scan and remux decision; with its wall and CPU time."""
    argv = ffmpeg.build_argv(
        config, Tool.FFPROBE, inputs=[MediaInput(source)], args=keyframe_scan_args()
    )
    cpu_before = _children_cpu()
    result = await runner.run_tool(
        argv, cwd=work, time_limit=600, config=config, max_stdout_bytes=64 * 1024 * 1024
    )
    scan = parse_keyframe_scan(result.stdout.decode("ascii", "replace"))
    decision = decide_remux(probe, top, 4.0, scan)
    return decision, result.elapsed, _children_cpu() - cpu_before


async def run_stills(
    source: Path, outdir: Path, probe: ProbeResult, config: ProcessingConfig
) -> tuple[float, float]:
    """The thumbnail + preview run, as the pipeline builds it."""
    plan = plan_stills(probe, config)
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source, ("-ss", f"{plan.start:g}", "-t", f"{plan.window:g}"))],
        args=stills_args(plan, probe, config),
    )
    return await timed(argv, outdir, config)


async def ssim(
    rung_mp4: Path,
    source: Path,
    rendition: PlannedRendition,
    work: Path,
    config: ProcessingConfig,
    flags: str = "bicubic",
) -> float:
    """SSIM (All) of an encoded rung against the source scaled straight to its size: with
    the ladder's own scaler (bicubic) that is what the per-rung ladder fed the encoder;
    lanczos is a sharper reference that favours neither way of scaling."""
    reference = f"scale={rendition.width}:{rendition.height}:flags={flags},setsar=1,format=yuv420p"
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(rung_mp4), MediaInput(source)],
        args=[
            "-filter_complex",
            f"[1:v:0]{reference}[ref];[0:v:0]setsar=1,format=yuv420p[out];[out][ref]ssim",
            "-f",
            "null",
            "-",
        ],
        log_level="info",
    )
    result = await runner.run_tool(argv, cwd=work, time_limit=600, config=config)
    match = re.search(r"All:([0-9.]+)", result.stderr_tail)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"ssim failed: {result.stderr_tail}")
    return float(match.group(1))


async def compare(
    variants: dict[str, str],
    rounds: int,
    run: Callable[[str], Awaitable[tuple[float, float]]],
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each variant ``rounds`` times, alternating which goes first."""
    wall: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    names = list(variants)
    for round_no in range(rounds):
        shift = round_no % len(names)
        for variant in names[shift:] + names[:shift]:
            took, used = await run(variant)
            wall[variant].append(took)
            cpu[variant].append(used)
            print(f"round {round_no + 1} ({variant}) wall {took:7.2f} s  cpu {used:7.2f} s")
    for variant, label in variants.items():
        print(
            f"({variant}) {label} wall median {statistics.median(wall[variant]):7.2f} s "
            f"[{_fmt(wall[variant])}]  cpu median {statistics.median(cpu[variant]):7.2f} s "
            f"[{_fmt(cpu[variant])}]"
        )
    return wall, cpu


def print_ratio(
    new: str, old: str, wall: dict[str, list[float]], cpu: dict[str, list[float]]
) -> None:
    for name, table in (("wall", wall), ("cpu", cpu)):
        ratio = statistics.median(table[new]) / statistics.median(table[old])
        print(f"ratio ({new})/({old}) {name}: {ratio:.3f}x")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measured_audio(
    source: Path, work: Path, probe: ProbeResult, config: ProcessingConfig
) -> tuple[list[AudioRendition], float]:
    """loudnorm's first pass (as the pipeline runs it before the ladder) and the plan."""
    measure = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=measure_args(probe.audio_tracks, config),
        log_level="info",
    )
    result = await runner.run_tool(
        measure, cwd=work, time_limit=3600, config=config.with_overrides(stderr_tail_bytes=65536)
    )
    measured = parse_measurements(result.stderr_tail)
    return plan_audio(probe.audio_tracks, measured, config), result.elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="ffmpeg -threads (0: auto)")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--audio-tracks", type=int, default=1)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=",".join(SECTIONS))
    args = parser.parse_args()
    sections = [name for name in args.sections.split(",") if name]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    config = ProcessingConfig(threads=args.threads, preset=args.preset)
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(source, args.seconds, args.size, args.fps, args.audio_tracks)
        probe = await probe_file(source, config)
        renditions = plan_ladder(
            probe.width, probe.height, probe.fps, config.rungs, max_fps=config.max_fps
        )
        audio, loudness_wall = await measured_audio(source, work, probe, config)
        print(
            f"source: {probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.1f} s, "
            f"{len(audio)} audio track(s); renditions: "
            f"{', '.join(f'{r.quality} {r.width}x{r.height}' for r in renditions)}; "
            f"preset {config.preset}, threads {args.threads or 'auto'}, "
            f"{len(os.sched_getaffinity(0))} usable cores"
        )
        print(f"loudness first pass (all tracks, audio only): wall {loudness_wall:.2f} s")
        print(
            "audio: every track is normalised and encoded ONCE per job and shared by every "
            "rung (the 'decode' section's (c) shows what one encode per rung cost)"
        )
        if "decode" in sections:
            await decode_section(source, work, renditions, probe, config, audio, args.rounds)
        if "remux" in sections:
            await remux_section(work, args, config)
        if "cascade" in sections:
            await cascade_section(source, work, probe, config, audio, args.rounds)
        if "stills" in sections:
            await stills_section(source, work, renditions, probe, config, audio, args.rounds)
    return 0


async def decode_section(
    source: Path,
    work: Path,
    renditions: list[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: list[AudioRendition],
    rounds: int,
) -> None:
    print("\n== decode: one decode for the ladder, audio once ==")
    variants = {
        "a": "single run, audio once      ",
        "b": "one ffmpeg per rendition    ",
        "c": "single run, audio per rung  ",
        "d": "(a) + storyboard            ",
    }

    async def run(variant: str) -> tuple[float, float]:
        out = work / variant
        if variant == "b":
            took = used = 0.0
            for rendition in renditions:
                one = await run_ladder(source, out, [rendition], probe, config, audio)
                took, used = took + one[0], used + one[1]
            return took, used
        return await run_ladder(
            source,
            out,
            renditions,
            probe,
            config,
            audio,
            storyboard=variant == "d",
            shared_audio=variant != "c",
        )

    wall, cpu = await compare(variants, rounds, run)
    for other in ("b", "c", "d"):
        print_ratio(other, "a", wall, cpu)
    saved = statistics.median(cpu["c"]) - statistics.median(cpu["a"])
    story = statistics.median(cpu["d"]) - statistics.median(cpu["a"])
    print(f"audio once saves {saved:.2f} s cpu per run; the storyboard costs {story:.2f} s cpu")


async def remux_section(work: Path, args: argparse.Namespace, config: ProcessingConfig) -> None:
    print("\n== remux: a compatible source's video copied as the top rung ==")
    source = work / "compatible.mp4"
    make_compatible_source(source, args.seconds, args.size, args.fps)
    probe = await probe_file(source, config)
    renditions = plan_ladder(
        probe.width, probe.height, probe.fps, config.rungs, max_fps=config.max_fps
    )
    audio, _ = await measured_audio(source, work, probe, config)
    decision, scan_wall, scan_cpu = await scan_keyframes(source, work, probe, renditions[0], config)
    print(
        f"compatible source: {probe.video_codec} {probe.video_profile} {probe.pix_fmt} "
        f"{probe.width}x{probe.height} {probe.fps:g} fps; decision: {decision.reason} "
        f"({decision.detail}); keyframe scan wall {scan_wall:.2f} s cpu {scan_cpu:.2f} s"
    )
    if not decision.remux:
        raise SystemExit("the bench's compatible source was not found compatible")
    copied = [replace(renditions[0], copy=True), *renditions[1:]]
    variants = {"e": "encode every rung           ", "r": "remux top, encode the rest  "}

    async def run(variant: str) -> tuple[float, float]:
        out = work / f"remux-{variant}"
        if variant == "e":
            return await run_ladder(source, out, renditions, probe, config, audio)
        # The scan is part of what remuxing costs.
        _, wall, cpu = await scan_keyframes(source, work, probe, renditions[0], config)
        took, used = await run_ladder(
            source, out, copied, probe, config, audio, keyframes=decision.keyframes
        )
        return took + wall, used + cpu

    wall, cpu = await compare(variants, args.rounds, run)
    print_ratio("r", "e", wall, cpu)


async def cascade_section(
    source: Path,
    work: Path,
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: list[AudioRendition],
    rounds: int,
) -> None:
    print("\n== cascade: lower rungs scaled from the rung above vs from the source ==")
    plans = {
        variant: plan_ladder(
            probe.width,
            probe.height,
            probe.fps,
            config.rungs,
            max_fps=config.max_fps,
            cascade=variant == "k",
        )
        for variant in ("p", "k")
    }
    print(
        "cascade plan: "
        + ", ".join(
            f"{r.quality} from "
            + ("source" if r.scale_from is None else plans["k"][r.scale_from].quality)
            for r in plans["k"]
        )
    )
    variants = {"p": "each rung from the source   ", "k": "each rung from the one above"}

    async def run(variant: str) -> tuple[float, float]:
        return await run_ladder(
            source, work / f"cascade-{variant}", plans[variant], probe, config, audio
        )

    wall, cpu = await compare(variants, rounds, run)
    print_ratio("k", "p", wall, cpu)
    for flags in ("bicubic", "lanczos"):
        for rendition in plans["p"][1:]:
            scores = [
                await ssim(
                    work / f"cascade-{variant}" / rendition.mp4_key,
                    source,
                    rendition,
                    work,
                    config,
                    flags,
                )
                for variant in ("p", "k")
            ]
            print(
                f"ssim {rendition.quality:>6} vs the source scaled straight ({flags}): "
                f"(p) {scores[0]:.5f}  (k) {scores[1]:.5f}  (k)-(p) {scores[1] - scores[0]:+.5f}"
            )


async def stills_section(
    source: Path,
    work: Path,
    renditions: list[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: list[AudioRendition],
    rounds: int,
) -> None:
    print("\n== stills: the thumbnail/preview run after the ladder vs beside it ==")
    cpus = len(os.sched_getaffinity(0))
    print(
        f"the pipeline would overlap them here: {stills_can_overlap(cpus, config.threads)} "
        f"({cpus} usable cores, FFMPEG_THREADS {config.threads})"
    )
    variants = {"q": "ladder, then stills         ", "o": "ladder and stills together  "}

    async def run(variant: str) -> tuple[float, float]:
        out = work / f"stills-{variant}"
        if variant == "q":
            first = await run_ladder(source, out, renditions, probe, config, audio)
            second = await run_stills(source, out, probe, config)
            return first[0] + second[0], first[1] + second[1]
        cpu_before = _children_cpu()
        started = time.perf_counter()
        _fresh(out, renditions, audio)
        plan = plan_storyboard(probe.duration, probe.width, probe.height, config)
        argv = ffmpeg.build_argv(
            config,
            Tool.FFMPEG,
            inputs=[MediaInput(source)],
            args=ladder_args(renditions, probe, config, audio, plan),
        )
        await asyncio.gather(timed(argv, out, config), run_stills(source, out, probe, config))
        return time.perf_counter() - started, _children_cpu() - cpu_before

    wall, cpu = await compare(variants, rounds, run)
    print_ratio("o", "q", wall, cpu)


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

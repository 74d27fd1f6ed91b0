"""Benchmark: the single-decode ladder against one ffmpeg per rendition.

Generates a 1080p source (testsrc2 + a sine tone), then times, side by side and
alternating the order each round:

(a) the pipeline's ladder: ONE ffmpeg that decodes the source once, ``split``s it and
    encodes every rendition (HLS fMP4 + MP4 through ``tee``);
(b) the same renditions with one ffmpeg each, run one after the other: the source is
    decoded once per rendition. Encoder settings and outputs are identical, because (b)
    uses the very same argument builder with a one-rendition ladder.

Usage::

    .venv/bin/python bench/ladder.py                  # 10 s 1080p30, 3 rounds
    .venv/bin/python bench/ladder.py --seconds 5 --rounds 2 --threads 2

Prints each wall time and the CPU time (user + system) the ffmpeg children used, the
medians and the ratios (b)/(a). On a shared, loaded machine the wall time swings with
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

from videoforge.processor import ffmpeg
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaInput, Tool
from videoforge.processor.ladder import PlannedRendition, plan_ladder
from videoforge.processor.probe import ProbeResult, probe_file
from videoforge.processor.transcode import ladder_args


def make_source(path: Path, seconds: float, size: str, fps: int) -> None:
    """A synthetic source with detail and motion (testsrc2) and a tone."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip


def _fresh(outdir: Path, renditions: list[PlannedRendition]) -> None:
    if outdir.exists():
        shutil.rmtree(outdir)
    for rendition in renditions:
        (outdir / rendition.hls_dir).mkdir(parents=True)
    (outdir / "mp4").mkdir(parents=True)


async def run_ladder(
    source: Path,
    outdir: Path,
    renditions: list[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
) -> tuple[float, float]:
    """One ffmpeg for ``renditions``; returns its wall and CPU time in seconds."""
    _fresh(outdir, renditions)
    argv = ffmpeg.build_argv(
        config,
        Tool.FFMPEG,
        inputs=[MediaInput(source)],
        args=ladder_args(renditions, probe, config),
    )
    cpu_before = _children_cpu()
    started = time.perf_counter()
    result = await ffmpeg.run_tool(argv, cwd=outdir, time_limit=3600, config=config)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {result.stderr_tail}")
    return elapsed, _children_cpu() - cpu_before


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
    args = parser.parse_args()

    config = ProcessingConfig(threads=args.threads, preset=args.preset)
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(source, args.seconds, args.size, args.fps)
        probe = await probe_file(source, config)
        renditions = plan_ladder(
            probe.width, probe.height, probe.fps, config.rungs, max_fps=config.max_fps
        )
        print(
            f"source: {probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.1f} s; "
            f"renditions: {', '.join(f'{r.quality} {r.width}x{r.height}' for r in renditions)}; "
            f"preset {config.preset}, threads {args.threads or 'auto'}"
        )
        wall: dict[str, list[float]] = {"a": [], "b": []}
        cpu: dict[str, list[float]] = {"a": [], "b": []}
        for round_no in range(args.rounds):
            # Alternate which variant goes first so that warm caches favour neither.
            order = ("a", "b") if round_no % 2 == 0 else ("b", "a")
            for variant in order:
                if variant == "a":
                    took, used = await run_ladder(source, work / "a", renditions, probe, config)
                else:
                    took = used = 0.0
                    for rendition in renditions:
                        one = await run_ladder(source, work / "b", [rendition], probe, config)
                        took, used = took + one[0], used + one[1]
                wall[variant].append(took)
                cpu[variant].append(used)
                print(f"round {round_no + 1} ({variant}) wall {took:7.2f} s  cpu {used:7.2f} s")
        labels = {"a": "single run, one decode  ", "b": "one ffmpeg per rendition"}
        for variant, label in labels.items():
            print(
                f"({variant}) {label} wall median {statistics.median(wall[variant]):7.2f} s "
                f"[{_fmt(wall[variant])}]  cpu median {statistics.median(cpu[variant]):7.2f} s "
                f"[{_fmt(cpu[variant])}]"
            )
        for name, table in (("wall", wall), ("cpu", cpu)):
            ratio = statistics.median(table["b"]) / statistics.median(table["a"])
            print(f"ratio (b)/(a) {name}: {ratio:.2f}x")
    return 0


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

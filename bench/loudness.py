"""The loudness measuring pass: the EBU R128 meter (what the pipeline runs) against
loudnorm's first pass (what it ran before), side by side on the same source.

Both read every audio track of a generated source in one audio-only run, as the
pipeline does before its ladder starts (the video packets are demuxed, not decoded), so
the pass is time that stands before the first playable segment and grows with the
video's length. The script alternates the two runs for ``--rounds`` rounds and prints
each one's wall and CPU time (of ffmpeg, from ``resource.getrusage``), their ratios,
and the figures each measured (integrated loudness and true peak agree to the meter's
0.1; the range to about 0.2 LU).

Usage::

    .venv/bin/python bench/loudness.py                 # 120 s of 720p30 with two tracks
    .venv/bin/python bench/loudness.py --seconds 600 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from videoforge.processor.audio import measure_args, parse_measurements
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.tracks import AudioTrack

TRACKS = (
    AudioTrack(0, "aac", "eng", None, True, 2),
    AudioTrack(1, "aac", "deu", None, False, 2),
)


def _source(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=30:d={seconds}",
         "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:r=48000:a=0.2:seed=1",
         "-f", "lavfi", "-i", f"sine=f=330:r=48000:d={seconds},volume=0.05",
         "-map", "0", "-map", "1", "-map", "2", "-ac", "2",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip


def _loudnorm_args() -> list[str]:
    graph = ";".join(
        f"[0:a:{t.index}]loudnorm=I=-14:TP=-1:LRA=20:print_format=json[m{t.index}]" for t in TRACKS
    )
    maps = [arg for t in TRACKS for arg in ("-map", f"[m{t.index}]")]
    return ["-nostats", "-filter_complex", graph, *maps, "-vn", "-sn", "-dn", "-f", "null", "-"]


def _timed(source: Path, args: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "info", "-i", str(source), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    meter_args = measure_args(TRACKS, ProcessingConfig())
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.mp4"
        _source(source, options.seconds)
        print(f"{options.seconds} s of 720p30, two stereo AAC tracks, {options.rounds} rounds")
        times: dict[str, list[tuple[float, float]]] = {"meter": [], "loudnorm": []}
        last: dict[str, str] = {}
        for round_ in range(options.rounds):
            order = ["meter", "loudnorm"] if round_ % 2 == 0 else ["loudnorm", "meter"]
            for name in order:
                wall, cpu, stderr = _timed(
                    source, meter_args if name == "meter" else _loudnorm_args()
                )
                times[name].append((wall, cpu))
                last[name] = stderr
        for name, runs in times.items():
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"  {name:9} wall {wall:6.2f} s   cpu {cpu:6.2f} s   (median)")
        wall_ratio = statistics.median(w for w, _ in times["loudnorm"]) / statistics.median(
            w for w, _ in times["meter"]
        )
        cpu_ratio = statistics.median(c for _, c in times["loudnorm"]) / statistics.median(
            c for _, c in times["meter"]
        )
        print(f"  loudnorm / meter: wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x")
        measured = parse_measurements(last["meter"])
        reports = [json.loads(r) for r in re.findall(r"\{[^{}]*\}", last["loudnorm"])]
        for track, report in zip(TRACKS, reports, strict=True):
            figures = measured[track.index]
            print(
                f"  track {track.index}: I {figures.integrated:.1f} / {report['input_i']} LUFS, "
                f"TP {figures.true_peak:.1f} / {report['input_tp']} dBTP, "
                f"LRA {figures.lra:.1f} / {report['input_lra']} LU (meter / loudnorm)"
            )


if __name__ == "__main__":
    main()

"""Loudness normalisation never pumps: a quiet track with one loud transient.

A constant gain to the target would push the transient's true peak far over the
ceiling. loudnorm's answer is its dynamic mode, an automatic gain control that ducks the
whole track for seconds around the peak and recovers slowly (on this source the steady
tone wandered by almost 2 dB). The pipeline keeps the gain constant and limits only the
transient: the tone comes out at one level from start to end, at the target, with the
true peak under the ceiling.
"""

from __future__ import annotations

import array
import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from videoforge.processor.audio import AudioRendition, Loudness, normalize_filter
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import process_file
from videoforge.processor.tracks import AudioTrack

from .test_media_outputs import ebur128_summary, integrated_loudness, joined, run

CONFIG = ProcessingConfig(threads=1, preset="ultrafast")
SECONDS = 8
CLICK_AT = 3.0
RATE = 48000


def make_source(target: Path) -> Path:
    # A tone at about -33 LUFS and one 1 ms click at full scale (true peak ~ 0 dBTP).
    audio = (
        f"aevalsrc='0.03*sin(2*PI*440*t)+if(between(t,{CLICK_AT},{CLICK_AT + 0.001}),0.98,0)'"
        f":s={RATE}:d={SECONDS}"
    )
    run(
        "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={SECONDS}",
        "-f", "lavfi", "-i", audio,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", "-shortest", str(target),
    )  # fmt: skip
    return target


def samples(path: Path) -> array.array[float]:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE),
         "-f", "f32le", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    decoded = array.array("f")
    decoded.frombytes(raw)
    return decoded


def true_peak(path: Path) -> float:
    """The true peak (dBTP) by ffmpeg's ebur128 filter."""
    summary = ebur128_summary(path)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[0-9.]+) dBFS", summary)
    assert peak, summary
    return float(peak.group(1))


async def test_a_transient_is_limited_and_the_gain_stays_constant(tmp_path: Path) -> None:
    result = await process_file(make_source(tmp_path / "click.mp4"), tmp_path / "job", CONFIG)
    [track] = result.audio_tracks
    assert track.loudness is not None
    assert track.loudness["true_peak"] > -1  # the source's transient is near full scale
    assert track.normalization == "limited"
    metadata = json.loads((result.output_dir / result.metadata).read_text())
    assert metadata["audio"][0]["normalization"] == "limited"

    audio = joined(result.output_dir, track.playlist_key, tmp_path / "audio.mp4")
    assert integrated_loudness(audio) == pytest.approx(CONFIG.loudness_target, abs=1.0)
    assert true_peak(audio) <= CONFIG.loudness_true_peak

    # The tone's level in every quarter second away from the click: one constant gain.
    decoded = samples(audio)
    window = RATE // 4
    levels = []
    for start in range(window, len(decoded) - window, window):
        if abs(start / RATE - CLICK_AT) < 0.5:
            continue
        chunk = decoded[start : start + window]
        levels.append(20 * math.log10(math.sqrt(sum(x * x for x in chunk) / window)))
    assert len(levels) > 20
    assert max(levels) - min(levels) < 0.2, levels


def test_the_second_pass_is_a_constant_gain() -> None:
    track = AudioTrack(0, "aac", None, None, True, 2)
    quiet = Loudness(integrated=-30.0, true_peak=-20.0, lra=3.0, threshold=-40.0)
    peaky = Loudness(integrated=-30.0, true_peak=-2.0, lra=3.0, threshold=-40.0)
    linear = normalize_filter(AudioRendition(track, quiet, True), CONFIG)
    assert linear == "volume=16.00dB,aresample=48000"
    limited = AudioRendition(track, peaky, True)
    assert limited.mode(CONFIG) == "limited"
    chain = normalize_filter(limited, CONFIG)
    assert "loudnorm" not in chain  # never its dynamic mode
    assert "volume=16.00dB" in chain
    # Sample-accurate (the lookahead's delay compensated) and no automatic level.
    assert re.search(r"alimiter=limit=0\.8[0-9]+:.*level=false:latency=true", chain), chain
    off = normalize_filter(AudioRendition(track, peaky, False), CONFIG)
    assert off == "aresample=48000"

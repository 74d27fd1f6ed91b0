"""Audio of the ladder: one rendition per source track, measured and normalised (EBU R128).

Every audio track of the source becomes one AAC rendition, encoded **once** and shared by
every video rung (an HLS alternate rendition, a DASH audio adaptation set); the default
track is also muxed into the MP4 downloads, from the same encoded packets (see
:mod:`transcode`).

Loudness is two-pass: :func:`measure_args` runs loudnorm's first pass over every track
in one ffmpeg run (audio only: the picture is not decoded) and :func:`parse_measurements`
reads its JSON reports (EBU R128 integrated loudness, true peak, loudness range). The
second pass, :func:`normalize_filter`, in the ladder run, is one constant gain to the
target (what loudnorm's ``linear`` mode does), never an automatic gain control: no
pumping. When that gain would push the true peak over the ceiling (a quiet track with a
few loud transients: a door, a clap), loudnorm would fall back to its dynamic mode,
which rides the gain for seconds around every peak; here the gain stays constant and a
lookahead limiter (``alimiter``, at 192 kHz so that inter-sample peaks count) takes
only those peaks down, for milliseconds. The metadata document records which applies
(``linear`` or ``limited``). A silent track is left as it is.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.tracks import AudioTrack

_REPORT = re.compile(r"\[Parsed_loudnorm_(\d+) @ [^\]]*\]\s*(\{[^{}]*\})", re.S)
#: Below this integrated loudness a track is silence (or nearly): no gain is applied.
SILENT_LUFS = -70.0
#: loudnorm's LRA target in the measuring pass (the figures it reports do not depend on it).
_TARGET_LRA = 20.0
#: The limiter of a track whose peaks the gain would push over the ceiling: a short
#: lookahead (its delay compensated, so the audio stays in sync with the picture), a
#: short release (it lets go within milliseconds: no audible pumping).
_LIMITER_ATTACK_MS = 1.5
_LIMITER_RELEASE_MS = 50.0
_LIMITER_MARGIN_DB = 0.3


@dataclass(frozen=True)
class Loudness:
    """EBU R128 figures of one track (loudnorm's first pass)."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # LUFS
    offset: float  # LU, loudnorm's target_offset

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class AudioRendition:
    """One audio track as the ladder encodes it."""

    track: AudioTrack
    loudness: Loudness | None  # None: not measured (normalisation off) or unreadable
    normalized: bool  # a loudnorm second pass is applied

    @property
    def name(self) -> str:
        return f"audio-{self.track.index}"

    @property
    def hls_dir(self) -> str:
        return f"hls/{self.name}"

    @property
    def playlist_key(self) -> str:
        return f"{self.hls_dir}/index.m3u8"

    @property
    def init_key(self) -> str:
        return f"{self.hls_dir}/init.mp4"

    @property
    def label(self) -> str:
        return self.track.title or self.track.language or f"Audio {self.track.index + 1}"

    def gain(self, config: ProcessingConfig) -> float:
        """The constant gain (dB) that brings the track to the target."""
        if not self.normalized or self.loudness is None:
            return 0.0
        return config.loudness_target - self.loudness.integrated

    def limited(self, config: ProcessingConfig) -> bool:
        """Whether the gain would take the true peak over the ceiling (a limiter is added)."""
        if not self.normalized or self.loudness is None:
            return False
        return self.loudness.true_peak + self.gain(config) > config.loudness_true_peak

    def mode(self, config: ProcessingConfig) -> str:
        """``linear``, ``limited``, ``silent``, ``off`` or ``unmeasured`` (metadata)."""
        if self.loudness is None:
            return "off" if not config.loudness_normalization else "unmeasured"
        if not self.normalized:
            return "silent" if self.loudness.integrated <= SILENT_LUFS else "off"
        return "limited" if self.limited(config) else "linear"


def _loudnorm_targets(config: ProcessingConfig) -> str:
    return f"I={config.loudness_target:g}:TP={config.loudness_true_peak:g}:LRA={_TARGET_LRA:g}"


def measure_args(tracks: tuple[AudioTrack, ...], config: ProcessingConfig) -> list[str]:
    """Output options of the measuring run: one loudnorm per track, nothing written.

    Only loudnorm filters are in the graph, in track order, so ``Parsed_loudnorm_{i}``
    in the report is track ``i``.
    """
    graph = ";".join(
        f"[0:a:{t.index}]loudnorm={_loudnorm_targets(config)}:print_format=json[m{t.index}]"
        for t in tracks
    )
    args = ["-nostats", "-filter_complex", graph]
    for track in tracks:
        args += ["-map", f"[m{track.index}]"]
    return [*args, "-vn", "-sn", "-dn", "-f", "null", "-"]


def _number(report: dict[str, Any], key: str) -> float | None:
    try:
        value = float(report[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value


def parse_measurements(stderr: str) -> dict[int, Loudness]:
    """loudnorm's first-pass reports by track index (a track without one is absent)."""
    found: dict[int, Loudness] = {}
    for match in _REPORT.finditer(stderr):
        try:
            report = json.loads(match.group(2))
        except json.JSONDecodeError:
            continue
        values = [
            _number(report, key)
            for key in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
        ]
        if any(v is None for v in values):
            continue
        i, tp, lra, thresh, offset = (float(v) for v in values)  # type: ignore[arg-type]
        # Silence measures as -inf: record it as the floor, so JSON can carry it.
        found[int(match.group(1))] = Loudness(
            integrated=i if math.isfinite(i) else SILENT_LUFS,
            true_peak=tp if math.isfinite(tp) else SILENT_LUFS,
            lra=lra if math.isfinite(lra) else 0.0,
            threshold=thresh if math.isfinite(thresh) else SILENT_LUFS,
            offset=offset if math.isfinite(offset) else 0.0,
        )
    return found


def plan_audio(
    tracks: tuple[AudioTrack, ...],
    measured: dict[int, Loudness],
    config: ProcessingConfig,
) -> list[AudioRendition]:
    """The audio renditions: every track, normalised when it was measured and not silent."""
    renditions = []
    for track in tracks:
        loudness = measured.get(track.index)
        normalized = (
            config.loudness_normalization
            and loudness is not None
            and loudness.integrated > SILENT_LUFS
        )
        renditions.append(AudioRendition(track, loudness, normalized))
    return renditions


def normalize_filter(rendition: AudioRendition, config: ProcessingConfig) -> str:
    """The filter chain applied to a track in the ladder run (may be only a resample)."""
    resample = "aresample=48000"  # AAC at 48 kHz is what players expect
    if not rendition.normalized or rendition.loudness is None:
        return resample
    gain = f"volume={rendition.gain(config):.2f}dB"
    if not rendition.limited(config):
        return f"{gain},{resample}"
    # The ceiling a little under the target: the limiter sees sample peaks at 192 kHz,
    # and the AAC encode can add a fraction of a dB on top.
    ceiling = 10 ** ((config.loudness_true_peak - _LIMITER_MARGIN_DB) / 20)
    return (
        f"aresample=192000,{gain},alimiter=limit={ceiling:.4f}:attack={_LIMITER_ATTACK_MS:g}"
        f":release={_LIMITER_RELEASE_MS:g}:level=false:latency=true,{resample}"
    )


def default_rendition(renditions: list[AudioRendition]) -> AudioRendition | None:
    """The track muxed into the MP4 downloads and marked DEFAULT in the playlists."""
    return next((r for r in renditions if r.track.default), renditions[0] if renditions else None)

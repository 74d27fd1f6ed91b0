"""Audio of the ladder: one rendition per source track, measured and normalised (EBU R128).

Every audio track of the source becomes one AAC rendition, encoded **once** and shared by
every video rung (an HLS alternate rendition, a DASH audio adaptation set); the default
track is also muxed into the MP4 downloads, from the same encoded packets (see
:mod:`transcode`).

Loudness is two-pass: :func:`measure_args` runs the ``ebur128`` meter (with true peak)
over every track in one ffmpeg run (audio only: the picture is not decoded) and
:func:`parse_measurements` reads its summaries (EBU R128 integrated loudness, true peak,
loudness range). Integrated loudness and true peak are loudnorm's first pass's to the
meter's 0.1 (the range within about 0.2 LU), at about a fifth of the cost: loudnorm
resamples every track to 192 kHz for its whole length, the meter only oversamples for
the peak. The second pass, :func:`normalize_filter`, in the ladder run, is one constant gain to the
target (what loudnorm's ``linear`` mode does), never an automatic gain control: no
pumping. When that gain would push the true peak over the ceiling (a quiet track with a
few loud transients: a door, a clap), loudnorm would fall back to its dynamic mode,
which rides the gain for seconds around every peak; here the gain stays constant and a
lookahead limiter (``alimiter``, at 192 kHz so that inter-sample peaks count) takes
only those peaks down, for milliseconds. The metadata document records which applies
(``linear`` or ``limited``). A silent track is left as it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.tracks import AudioTrack

#: One track's summary: ``[Parsed_ebur128_N @ 0x...] Summary:`` and its figures. ffmpeg
#: 5.1 prints one for the probe of the graph too (all zeros); the last one per filter wins.
_SUMMARY = re.compile(r"\[Parsed_ebur128_(\d+) @ [^\]]*\] Summary:(.*?)(?=\[|\Z)", re.S)
_FIGURE = {
    "integrated": re.compile(r"Integrated loudness:\s*I:\s*(\S+) LUFS\s*Threshold:\s*(\S+) LUFS"),
    "lra": re.compile(r"Loudness range:\s*LRA:\s*(\S+) LU"),
    "true_peak": re.compile(r"True peak:\s*Peak:\s*(\S+) dBFS"),
}
#: Below this integrated loudness a track is silence (or nearly): no gain is applied.
SILENT_LUFS = -70.0
#: The limiter of a track whose peaks the gain would push over the ceiling: a short
#: lookahead (its delay compensated, so the audio stays in sync with the picture), a
#: short release (it lets go within milliseconds: no audible pumping).
_LIMITER_ATTACK_MS = 1.5
_LIMITER_RELEASE_MS = 50.0
_LIMITER_MARGIN_DB = 0.3


@dataclass(frozen=True)
class Loudness:
    """EBU R128 figures of one track (the measuring pass)."""

    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # LUFS, the relative gate of the integrated figure

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class AudioRendition:
    """One audio track as the ladder encodes it."""

    track: AudioTrack
    loudness: Loudness | None  # None: not measured (normalisation off) or unreadable
    normalized: bool  # the gain (and, where needed, the limiter) is applied

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


def measure_args(tracks: tuple[AudioTrack, ...], config: ProcessingConfig) -> list[str]:
    """Output options of the measuring run: one meter per track, nothing written.

    Only ebur128 filters are in the graph, in track order, so ``Parsed_ebur128_{i}`` in
    the report is track ``i``. Its 10 Hz frame log goes to the verbose level, below
    what the run prints: only the summaries reach stderr.
    """
    graph = ";".join(
        f"[0:a:{t.index}]ebur128=peak=true:framelog=verbose[m{t.index}]" for t in tracks
    )
    args = ["-nostats", "-filter_complex", graph]
    for track in tracks:
        args += ["-map", f"[m{track.index}]"]
    return [*args, "-vn", "-sn", "-dn", "-f", "null", "-"]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_measurements(stderr: str) -> dict[int, Loudness]:
    """The meters' summaries by track index (a track without a readable one is absent)."""
    found: dict[int, Loudness] = {}
    for match in _SUMMARY.finditer(stderr):
        body = match.group(2)
        loudness, lra, peak = (_FIGURE[k].search(body) for k in ("integrated", "lra", "true_peak"))
        if loudness is None or lra is None or peak is None:
            continue
        values = [_number(loudness.group(1)), _number(peak.group(1)), _number(lra.group(1))]
        thresh = _number(loudness.group(2))
        if any(v is None for v in values) or thresh is None:
            continue
        i, tp, range_ = (float(v) for v in values)  # type: ignore[arg-type]
        # Silence measures as -70 (the meter's floor) or -inf: the floor, JSON can carry it.
        found[int(match.group(1))] = Loudness(
            integrated=i if math.isfinite(i) else SILENT_LUFS,
            true_peak=tp if math.isfinite(tp) else SILENT_LUFS,
            lra=range_ if math.isfinite(range_) else 0.0,
            threshold=thresh if math.isfinite(thresh) else SILENT_LUFS,
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

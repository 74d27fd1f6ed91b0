"""Chunked encoding (issue 15): where a long video is split, and the ffmpeg arguments of
the cut and of one part's ladder.

A part spans ``[start, end)`` of the whole video's timeline (0 = the file's start, as in
the ladder), and every boundary is a multiple of the HLS segment length: the ladder's
keyframes are forced on that grid anyway, so a part's segments are exactly the ones an
unchunked run would cut, and every part starts on a keyframe of its own. The source is
cut by stream copy from the source keyframe at or before ``start`` to the first one past
``end`` (``-copyts``: the part keeps the source's timestamps); the part's ladder decodes
that and keeps, with ``trim``, exactly the frames of its span, on the whole video's
timeline. Its HLS segments then carry the global decode times (``tfdt``: the first part
as in an unchunked run, the others through ``movflags=+frag_discont``), so the stitched
playlists need no discontinuity and the byte-joined segments are one continuous MP4.

Audio is never encoded per part (it would drift and click at the joins): the parent
encodes every track once for the whole video (:func:`shared_args`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from videoforge.processor.audio import AudioRendition, Loudness
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.probe import ProbeResult
from videoforge.processor.storyboard import StoryboardPlan
from videoforge.processor.tracks import AudioTrack, Chapter, SubtitleTrack
from videoforge.processor.transcode import ladder_args

#: Where a part's source is stored, under the parent's outputs (removed by the stitch).
PARTS_DIR: Final = "parts"
#: The parent's plan: what the parts and the stitch need to know of the whole video.
PLAN_KEY: Final = f"{PARTS_DIR}/plan.json"
#: What the parent's own run made (audio, stills, tracks), for the stitch.
SHARED_KEY: Final = f"{PARTS_DIR}/shared.json"

#: The longest a cut may reach back before its part starts (seconds, as a share of the
#: part's length): sources with keyframes further apart than this are not split.
_MAX_LEAD: Final = 0.5


@dataclass(frozen=True)
class PartPlan:
    """One part: its span of the timeline and the source span its cut copies."""

    index: int
    start: float
    end: float | None  # None: to the end of the video
    cut_from: float  # a source keyframe at or before ``start``
    cut_to: float | None  # the first source keyframe past ``end`` (None: to the end)

    @property
    def name(self) -> str:
        """The prefix of this part's files (``p0003``)."""
        return part_name(self.index)

    def source_key(self) -> str:
        return f"{PARTS_DIR}/{self.name}.mp4"


def part_name(index: int) -> str:
    return f"p{index:04d}"


def grid_step(config: ProcessingConfig) -> float:
    """Part boundaries fall on multiples of this: the HLS segment length, when the
    keyframe grid divides it (else the first common multiple of the two)."""
    seg, gop = config.hls_segment_seconds, config.gop_seconds
    ratio = seg / gop
    if abs(ratio - round(ratio)) < 1e-9:
        return seg
    return seg * gop


def plan_parts(
    duration: float, keyframes: Sequence[float], config: ProcessingConfig
) -> list[PartPlan] | None:
    """The parts of a video of ``duration`` seconds with source ``keyframes`` (on the
    timeline, sorted), or None when it is not split: chunking off, the video not longer
    than ``chunk_min_seconds``, fewer than two parts, or keyframes too far apart.

    Parts are ``chunk_seconds`` long rounded to the grid (the last one takes the rest,
    at least half a part)."""
    if config.chunk_min_seconds <= 0 or duration <= config.chunk_min_seconds or not keyframes:
        return None
    step = grid_step(config)
    length = max(step, math.floor(config.chunk_seconds / step + 0.5) * step)
    count = max(1, math.floor(duration / length + 0.5))
    if count < 2:
        return None
    bounds = [i * length for i in range(count)]
    parts: list[PartPlan] = []
    for index, start in enumerate(bounds):
        end = bounds[index + 1] if index + 1 < count else None
        before = [k for k in keyframes if k <= start + 1e-6]
        if not before or start - before[-1] > _MAX_LEAD * length:
            return None
        after = [k for k in keyframes if end is not None and k > end + 1e-6]
        parts.append(
            PartPlan(
                index=index,
                start=start,
                end=end,
                cut_from=before[-1],
                cut_to=after[0] if after else None,
            )
        )
    return parts


def cut_input_options(part: PartPlan) -> tuple[str, ...]:
    """The cut's input options: from the keyframe before the part to the one after."""
    options = ["-ss", f"{part.cut_from:.6f}"]
    if part.cut_to is not None:
        options += ["-t", f"{part.cut_to - part.cut_from:.6f}"]
    return tuple(options)


def cut_args(part: PartPlan, output: Path | str) -> list[str]:
    """The cut's output options: the video's packets as they are, timestamps kept."""
    return ["-copyts", "-map", "0:v:0", "-c", "copy", "-an", "-sn", "-dn", "-f", "mp4", str(output)]


def _trim(part: PartPlan, origin: float) -> str:
    """Keep the part's span (``trim`` on the source's timestamps, which start at
    ``origin``), moved onto the whole video's timeline."""
    span = f"start={part.start + origin:.6f}"
    if part.end is not None:
        span += f":end={part.end + origin:.6f}"
    shift = f",setpts=PTS-{origin:.6f}/TB" if origin else ""
    return f"trim={span}{shift}"


def part_args(
    part: PartPlan,
    renditions: Sequence[PlannedRendition],
    probe: ProbeResult,
    config: ProcessingConfig,
    origin: float,
) -> list[str]:
    """One part's ladder: the rungs of an unchunked run, video only (no audio, no MP4s,
    no storyboard), on the frames of the part's span with their global timestamps, and
    the keyframe grid counted from the part's start (a multiple of it)."""
    args = ladder_args(renditions, probe, config)
    out = ["-copyts"]
    it = iter(args)
    for arg in it:
        if arg == "-filter_complex":
            graph = next(it)
            if not graph.startswith("[0:v:0]"):
                raise ValueError("the ladder's graph does not start from the source")
            out += [arg, f"[0:v:0]{_trim(part, origin)}," + graph.removeprefix("[0:v:0]")]
        elif arg.startswith("-force_key_frames"):
            grid = next(it)
            if not grid.startswith("expr:gte(t,n_forced*") or not grid.endswith(")"):
                raise ValueError(f"unexpected keyframe grid {grid!r}")
            out += [arg, f"{grid[:-1]}+{part.start:.6f})"]
        elif arg == "tee":
            out += [arg, _part_tee(next(it), part)]
        else:
            out.append(arg)
    return out


def _part_tee(targets: str, part: PartPlan) -> str:
    """The ladder's tee without its MP4s (the stitch makes them), and with the global
    decode times in every later part's fragments."""
    slaves = [s for s in targets.split("|") if ":f=mp4:" not in s]
    if part.index == 0:
        return "|".join(slaves)
    return "|".join(
        s.replace(":f=hls:", ":f=hls:hls_segment_options=movflags\\=+frag_discont:", 1)
        for s in slaves
    )


def shared_args(
    probe: ProbeResult,
    config: ProcessingConfig,
    audio: Sequence[AudioRendition],
    storyboard: StoryboardPlan,
) -> list[str]:
    """The parent's own run: every audio track encoded once for the whole video (its HLS
    renditions) and the storyboard sheets, from one read of the source."""
    args = ladder_args([], probe, config, audio, storyboard)
    if audio:
        return args
    # No audio: no tee either (it would have no slave), only the sheets.
    start = args.index("-flags")
    return args[:start] + args[start + 5 :]


__all__ = [
    "PARTS_DIR",
    "PLAN_KEY",
    "SHARED_KEY",
    "PartPlan",
    "Shared",
    "cut_args",
    "cut_input_options",
    "grid_step",
    "part_args",
    "part_name",
    "plan_parts",
    "probe_from_dict",
    "shared_args",
]


@dataclass(frozen=True)
class Shared:
    """What the parent's own run found and made, as the stitch needs it (``shared.json``):
    the probe, each audio track's loudness, the text tracks extracted, the notes."""

    probe: ProbeResult
    loudness: dict[int, Loudness]
    subtitles: tuple[int, ...]  # indexes of the text tracks extracted
    notes: list[dict[str, object]]

    def dumps(self) -> str:
        return json.dumps(
            {
                "probe": self.probe.to_dict(),
                "loudness": {str(k): v.to_dict() for k, v in self.loudness.items()},
                "subtitles": list(self.subtitles),
                "notes": self.notes,
            }
        )

    @classmethod
    def loads(cls, text: str) -> Shared:
        doc = json.loads(text)
        return cls(
            probe=probe_from_dict(doc["probe"]),
            loudness={int(k): Loudness(**v) for k, v in doc["loudness"].items()},
            subtitles=tuple(int(i) for i in doc["subtitles"]),
            notes=list(doc["notes"]),
        )


def probe_from_dict(document: dict[str, Any]) -> ProbeResult:
    """The probe again from :meth:`ProbeResult.to_dict` (the parent's, for its parts and
    the stitch: they never see the whole source)."""
    fields = dict(document)
    fields["audio_tracks"] = tuple(AudioTrack(**t) for t in fields["audio_tracks"])
    fields["subtitle_tracks"] = tuple(SubtitleTrack(**t) for t in fields["subtitle_tracks"])
    fields["chapters"] = tuple(Chapter(**c) for c in fields["chapters"])
    return ProbeResult(**fields)

"""The stills run: the thumbnail and animated preview from a few seconds around 20 % of
the way in (first frames are often black title cards), plus a second around each of
25/50/75 % for the thumbnail candidates a creator chooses from (``thumbnails/1.jpg``..
``3.jpg``). It runs beside the ladder when the ladder leaves a core idle
(:func:`stills_can_overlap`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.probe import ProbeResult

THUMBNAIL = "thumbnail.jpg"
#: The stills a creator may choose as the thumbnail instead: ``thumbnails/1.jpg``...
THUMBNAIL_CANDIDATES_DIR = "thumbnails"
#: Where through the video each candidate is taken (fractions of the duration).
CANDIDATE_POSITIONS = (0.25, 0.5, 0.75)
#: Seconds decoded around each candidate's point, for thumbnail= to choose a frame in.
CANDIDATE_WINDOW = 1.0
PREVIEW = "preview.gif"


def candidate_key(number: int) -> str:
    """The output key of thumbnail candidate ``number`` (1-based, in time order)."""
    return f"{THUMBNAIL_CANDIDATES_DIR}/{number}.jpg"


@dataclass(frozen=True)
class StillsPlan:
    """Where the stills run seeks to and for how long it decodes."""

    start: float
    window: float
    thumb_width: int
    thumb_height: int
    preview_width: int
    preview_height: int
    #: Where each thumbnail candidate's window starts, and how long it is.
    candidates: tuple[float, ...] = ()
    candidate_window: float = CANDIDATE_WINDOW


def plan_stills(probe: ProbeResult, config: ProcessingConfig) -> StillsPlan:
    """Pick a window about 20 % in (past intros and fades) and the still sizes, and a
    short window centred on each of :data:`CANDIDATE_POSITIONS` for the candidates."""
    window = min(config.preview_seconds, probe.duration)
    start = max(0.0, min(probe.duration * 0.2, probe.duration - window))
    # An eighth of the video at most, so that the candidates of a short one stay apart,
    # but three frames' worth at least: a window shorter than a frame decodes nothing,
    # and one empty candidate would fail the whole stills run.
    frame = 1 / probe.fps if probe.fps > 0 else 0.04
    around = min(max(min(CANDIDATE_WINDOW, probe.duration / 8), 3 * frame), probe.duration)
    candidates = tuple(
        round(max(0.0, min(probe.duration * at - around / 2, probe.duration - around)), 3)
        for at in CANDIDATE_POSITIONS
    )

    def fit(width: int) -> tuple[int, int]:
        w = min(width, probe.width)
        h = probe.height * w / probe.width
        return max(2, int(w) // 2 * 2), max(2, round(h / 2) * 2)

    tw, th = fit(config.thumbnail_width)
    pw, ph = fit(config.preview_width)
    return StillsPlan(
        round(start, 3), round(window, 3), tw, th, pw, ph, candidates, round(around, 3)
    )


def stills_can_overlap(cpus: int, threads: int) -> bool:
    """Run the stills beside the ladder (not after it) when the ladder leaves a core idle.

    ``threads`` is FFMPEG_THREADS: with 0 every encoder may use every core, so there is
    nothing to spare; with N the ladder's encoders each keep to N threads (ffmpeg runs
    its encoders one after the other), and a machine with more cores than that has room
    for the stills run's decode, scale and GIF palette.
    """
    return threads > 0 and cpus > threads


def _jpeg(label: str, key: str) -> list[str]:
    """One JPEG still of the filter graph's output ``label``."""
    return ["-map", label, "-frames:v", "1", "-q:v", "3", "-update", "1", key]


def stills_args(plan: StillsPlan, probe: ProbeResult, config: ProcessingConfig) -> list[str]:
    """Output options of the thumbnail + animated preview run; input 0 is the preview's
    window, inputs 1.. the candidates' windows (in ``plan.candidates`` order)."""
    # thumbnail= takes batches of 2 frames or more (it picks from fewer at the end).
    frames = max(2, min(100, math.floor(plan.window * probe.fps)))
    per_candidate = max(2, min(25, math.floor(plan.candidate_window * probe.fps)))
    size = f"{plan.thumb_width}:{plan.thumb_height}"
    candidate_graph = [
        # Scaled before thumbnail= buffers its batch: a few small frames, not 4K ones.
        f"[{n}:v:0]scale={size},setsar=1,thumbnail={per_candidate}[c{n}]"
        for n in range(1, len(plan.candidates) + 1)
    ]
    candidate_outputs = [
        arg
        for n in range(1, len(plan.candidates) + 1)
        for arg in _jpeg(f"[c{n}]", candidate_key(n))
    ]
    graph = ";".join(
        [
            "[0:v:0]split=2[t][g]",
            # thumbnail= picks the frame closest to the average of the batch: a
            # representative picture rather than a fade or a black frame.
            f"[t]thumbnail={frames},scale={plan.thumb_width}:{plan.thumb_height},setsar=1[tv]",
            f"[g]fps={config.preview_fps},scale={plan.preview_width}:{plan.preview_height}"
            ":flags=lanczos,setsar=1,split[g1][g2]",
            "[g1]palettegen=max_colors=128:stats_mode=diff[p]",
            "[g2][p]paletteuse=dither=bayer:bayer_scale=4[gv]",
            *candidate_graph,
        ]
    )
    return [
        "-filter_complex",
        graph,
        "-map_metadata",
        "-1",
        *_jpeg("[tv]", THUMBNAIL),
        "-map",
        "[gv]",
        "-loop",
        "0",
        PREVIEW,
        *candidate_outputs,
    ]

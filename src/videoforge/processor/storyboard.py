"""Storyboard: sprite sheets of small thumbnails and the WebVTT track that points into them.

The sheets come from the ladder's own decode: one more branch of its filtergraph
(``fps`` drops all but one frame per interval before anything is scaled, then ``tile``
packs them), written by the same ffmpeg run, so a storyboard costs no second read or
decode of the source (bench/ladder.py measures what it adds). :func:`plan_storyboard`
is a pure function of the duration and the picture size; :func:`storyboard_vtt` writes
the thumbnails track (``sprite_0.jpg#xywh=x,y,w,h`` per interval), the format players
(video.js, Shaka, JW, hls.js plug-ins) read for seek-bar previews.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from videoforge.infra.webvtt import vtt_document
from videoforge.processor.config import ProcessingConfig

STORYBOARD_DIR = "storyboard"
STORYBOARD_VTT = f"{STORYBOARD_DIR}/thumbnails.vtt"


@dataclass(frozen=True)
class StoryboardPlan:
    interval: float  # seconds between tiles
    tiles: int  # how many tiles the track references
    tile_width: int
    tile_height: int
    columns: int
    rows: int

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheets(self) -> int:
        return math.ceil(self.tiles / self.per_sheet)

    def sheet_key(self, number: int) -> str:
        return f"{STORYBOARD_DIR}/sprite_{number}.jpg"

    @property
    def sheet_keys(self) -> list[str]:
        return [self.sheet_key(n) for n in range(self.sheets)]


def plan_storyboard(
    duration: float, width: int, height: int, config: ProcessingConfig
) -> StoryboardPlan:
    """One tile every 2-10 s (a 100th of the duration, within those bounds), and never
    more than ``storyboard_max_sheets`` sheets: a very long video gets a longer interval."""
    per_sheet = config.storyboard_columns * config.storyboard_rows
    interval = min(
        config.storyboard_max_interval, max(config.storyboard_min_interval, duration / per_sheet)
    )
    interval = max(interval, duration / (per_sheet * config.storyboard_max_sheets))
    interval = float(Fraction(interval).limit_denominator(100))
    tiles = max(1, math.ceil(duration / interval - 1e-6))
    tile_width = min(config.storyboard_tile_width, width) // 2 * 2 or 2
    tile_height = max(2, round(height * tile_width / width / 2) * 2)
    columns = min(config.storyboard_columns, tiles)
    rows = min(config.storyboard_rows, math.ceil(tiles / columns))
    return StoryboardPlan(interval, tiles, tile_width, tile_height, columns, rows)


def storyboard_filter(plan: StoryboardPlan, source: str = "[0:v:0]", label: str = "sb") -> str:
    """The branch of the ladder's filtergraph that makes the sheets."""
    rate = Fraction(1) / Fraction(plan.interval)
    return (
        f"{source}fps={rate.numerator}/{rate.denominator},"
        f"scale={plan.tile_width}:{plan.tile_height}:flags=bicubic,setsar=1,"
        f"tile={plan.columns}x{plan.rows}[{label}]"
    )


def storyboard_output_args(plan: StoryboardPlan, label: str = "sb") -> list[str]:
    """The output options of the sheets (relative to the output directory)."""
    return [
        "-map",
        f"[{label}]",
        "-map_metadata",
        "-1",
        "-frames:v",
        str(plan.sheets),
        "-q:v",
        "5",
        "-start_number",
        "0",
        "-f",
        "image2",
        f"{STORYBOARD_DIR}/sprite_%d.jpg",
    ]


def storyboard_vtt(plan: StoryboardPlan, duration: float) -> str:
    """The WebVTT thumbnails track; URLs are relative to the track (same directory)."""
    cues = []
    for i in range(plan.tiles):
        sheet, at = divmod(i, plan.per_sheet)
        row, column = divmod(at, plan.columns)
        start = i * plan.interval
        end = min(duration, (i + 1) * plan.interval)
        if end <= start:
            break
        x, y = column * plan.tile_width, row * plan.tile_height
        cues.append(
            (start, end, f"sprite_{sheet}.jpg#xywh={x},{y},{plan.tile_width},{plan.tile_height}")
        )
    return vtt_document(cues, escape=False)  # our own "sprite_N.jpg#xywh=" payloads

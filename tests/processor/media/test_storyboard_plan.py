"""The storyboard across lengths: one tile every 2-10 s depending on the duration, never
more than a few sheets; and on real media, a storyboard of several sheets (the last one
partly filled) whose thumbnails track covers the whole video, tile by tile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from videoforge.processor.pipeline import process_file
from videoforge.processor.storyboard import plan_storyboard

from .test_media_outputs import CONFIG, run, streams


@pytest.mark.parametrize(
    ("duration", "interval", "sheets"),
    [
        (3.0, 2.0, 1),  # short: the 2 s floor
        (120.0, 2.0, 1),  # 60 tiles on one 10x10 sheet
        (600.0, 6.0, 1),  # a hundredth of the duration between 2 and 10 s
        (3600.0, 10.0, 4),  # the 10 s ceiling: 360 tiles
        (4 * 3600.0, 28.8, 5),  # very long: the interval grows, the sheets stay at 5
    ],
)
def test_interval_and_sheets_follow_the_length(
    duration: float, interval: float, sheets: int
) -> None:
    plan = plan_storyboard(duration, 1920, 1080, CONFIG)
    assert plan.interval == pytest.approx(interval)
    assert plan.sheets == sheets
    assert plan.sheets <= CONFIG.storyboard_max_sheets
    assert plan.tiles * plan.interval >= duration - 1e-6
    assert (plan.tile_width, plan.tile_height) == (160, 90)


async def test_several_sheets_cover_the_whole_video(tmp_path: Path) -> None:
    seconds = 11
    source = tmp_path / "source.mp4"
    run(
        "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=s=320x180:r=25:d={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(source),
    )  # fmt: skip
    # A 2x2 grid and one tile a second: 11 tiles on three sheets, the last with three.
    config = CONFIG.with_overrides(
        storyboard_columns=2,
        storyboard_rows=2,
        storyboard_min_interval=1.0,
        storyboard_max_interval=1.0,
    )
    result = await process_file(source, tmp_path / "job", config)
    out = result.output_dir
    assert result.storyboard_sheets == [f"storyboard/sprite_{n}.jpg" for n in range(3)]
    for sheet in result.storyboard_sheets:
        picture = streams(out / sheet)[0]
        assert (picture["width"], picture["height"]) == (2 * 160, 2 * 90)
    cues = re.findall(
        r"(\d\d):(\d\d):(\d\d\.\d+) --> (\d\d):(\d\d):(\d\d\.\d+)\n"
        r"sprite_(\d)\.jpg#xywh=(\d+),(\d+),160,90",
        (out / str(result.storyboard)).read_text(),
    )
    assert len(cues) == seconds
    ends = 0.0
    for i, (_, m1, s1, _, m2, s2, sheet, x, y) in enumerate(cues):
        start, end = int(m1) * 60 + float(s1), int(m2) * 60 + float(s2)
        assert start == pytest.approx(ends)  # no gap, no overlap
        ends = end
        assert (int(sheet), int(x), int(y)) == (i // 4, (i % 2) * 160, (i % 4) // 2 * 90)
    assert ends == pytest.approx(result.probe.duration, abs=0.05)

"""Ladder planning: a pure function of the display size and frame rate."""

from __future__ import annotations

import pytest

from videoforge.processor.config import DEFAULT_RUNGS, ProcessingConfig
from videoforge.processor.ladder import capped_fps, plan_ladder


def sizes(width: int, height: int, fps: float = 30.0) -> list[tuple[str, int, int]]:
    return [(r.quality, r.width, r.height) for r in plan_ladder(width, height, fps, DEFAULT_RUNGS)]


def test_landscape_1080p_gets_every_rung_up_to_its_size() -> None:
    assert sizes(1920, 1080) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("mobile", 640, 360),
    ]


def test_4k_plans_all_five_rungs() -> None:
    planned = plan_ladder(3840, 2160, 30, DEFAULT_RUNGS)
    assert [r.quality for r in planned] == ["2160p", "1080p", "720p", "480p", "mobile"]
    assert (planned[0].width, planned[0].height) == (3840, 2160)
    # Rate control grows with the rung and every rung has a cap.
    bitrates = [r.max_bitrate for r in planned]
    assert bitrates == sorted(bitrates, reverse=True)
    assert all(r.bufsize == 2 * r.max_bitrate and 18 <= r.crf <= 30 for r in planned)


def test_portrait_keeps_its_orientation() -> None:
    assert sizes(1080, 1920) == [
        ("1080p", 1080, 1920),
        ("720p", 720, 1280),
        ("480p", 480, 854),
        ("mobile", 360, 640),
    ]


def test_never_taller_than_the_source() -> None:
    assert sizes(1280, 720) == [("720p", 1280, 720), ("480p", 854, 480), ("mobile", 640, 360)]
    # 900 lines: 1080p would upscale, so the top rung is 720p.
    assert sizes(1600, 900)[0] == ("720p", 1280, 720)


def test_wide_source_fits_the_box_by_width() -> None:
    # Cinemascope 1920x800 reaches the 1080p box's width: it is the 1080p rendition.
    assert sizes(1920, 800) == [
        ("1080p", 1920, 800),
        ("720p", 1280, 534),
        ("480p", 854, 356),
        ("mobile", 640, 266),
    ]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [((321), (241), (320, 240)), (160, 120, (160, 120)), (199, 101, (198, 100))],
)
def test_source_smaller_than_every_rung_gets_one_rendition_at_its_size(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert sizes(width, height) == [("source", *expected)]


def test_odd_sizes_scale_to_even_dimensions_within_the_source() -> None:
    for width, height in [(641, 481), (1283, 721), (721, 1283), (999, 1001), (4095, 2303)]:
        for r in plan_ladder(width, height, 30, DEFAULT_RUNGS):
            assert (r.width % 2, r.height % 2) == (0, 0), (width, height, r)
            assert (min(r.width, width), min(r.height, height)) == (r.width, r.height)
            if abs(width - height) > 10:  # near-square sizes may round to a square
                assert (r.width > r.height) == (width > height)


def test_frame_rate_is_capped_by_an_integer_divisor() -> None:
    planned = plan_ladder(1280, 720, 120, DEFAULT_RUNGS)
    assert {r.quality: r.fps for r in planned} == {"720p": 60, "480p": 60, "mobile": 30}
    assert capped_fps(50, 30) == 25
    assert capped_fps(29.97, 30) == 29.97
    assert capped_fps(59.94, 30) == pytest.approx(29.97)
    tight = ProcessingConfig(max_fps=24)
    assert plan_ladder(640, 360, 48, tight.rungs, max_fps=tight.max_fps)[0].fps == 24


def test_keys_are_deterministic_and_relative() -> None:
    r = plan_ladder(1280, 720, 30, DEFAULT_RUNGS)[0]
    assert (r.playlist_key, r.init_key, r.mp4_key) == (
        "hls/720p/index.m3u8",
        "hls/720p/init.mp4",
        "mp4/720p.mp4",
    )


def test_rejects_a_sizeless_source() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_ladder(0, 720, 30, DEFAULT_RUNGS)

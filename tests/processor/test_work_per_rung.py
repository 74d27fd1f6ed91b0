"""Less work per rung, the pure parts: the cascade in the ladder plan, its filtergraph, and
when the stills run may overlap the ladder."""

from __future__ import annotations

import pytest

from videoforge.processor.config import DEFAULT_RUNGS, ProcessingConfig
from videoforge.processor.ladder import plan_ladder
from videoforge.processor.probe import ProbeResult
from videoforge.processor.stills import stills_can_overlap
from videoforge.processor.transcode import ladder_args


def probe(width: int, height: int, fps: float) -> ProbeResult:
    return ProbeResult(
        format_name="mov",
        duration=10.0,
        size=1,
        bit_rate=None,
        width=width,
        height=height,
        coded_width=width,
        coded_height=height,
        rotation=0,
        fps=fps,
        video_codec="h264",
        audio_codec=None,
        has_audio=False,
        stream_count=1,
    )


def sources(width: int, height: int, fps: float, cascade: bool) -> list[tuple[str, int | None]]:
    return [
        (r.quality, r.scale_from)
        for r in plan_ladder(width, height, fps, DEFAULT_RUNGS, cascade=cascade)
    ]


def test_without_cascade_every_rung_scales_the_source() -> None:
    assert {f for _, f in sources(1920, 1080, 30, cascade=False)} == {None}


def test_a_cascade_scales_each_rung_from_the_one_above() -> None:
    assert sources(3840, 2160, 30, cascade=True) == [
        ("2160p", None),
        ("1080p", 0),
        ("720p", 1),
        ("480p", 2),
        ("mobile", 3),
    ]


@pytest.mark.parametrize("fps", [60, 50, 30])
def test_the_mobile_rate_is_taken_from_frames_that_nest(fps: float) -> None:
    # 60 -> 30 and 50 -> 25 keep every other frame of the 480p rung; 30 stays 30.
    assert dict(sources(1920, 1080, fps, cascade=True))["mobile"] == 2


def test_a_rate_that_does_not_divide_scales_the_source() -> None:
    # 90 fps under a 45 fps cap: the big rungs run at 90/2, the mobile rung at 90/3 = 30,
    # which cannot be taken from 45 fps frames (45/30 is not an integer).
    planned = plan_ladder(1920, 1080, 90, DEFAULT_RUNGS, max_fps=45, cascade=True)
    assert [r.fps for r in planned] == [45, 45, 45, 30]
    assert [r.scale_from for r in planned] == [None, 0, 1, None]


def test_the_cascade_graph_splits_after_each_scale() -> None:
    planned = plan_ladder(1920, 1080, 60, DEFAULT_RUNGS, cascade=True)
    graph = ladder_args(planned, probe(1920, 1080, 60), ProcessingConfig())[1].split(";")
    assert graph[0] == "[0:v:0]yadif=deint=interlaced[s0]"
    assert graph[1] == "[s0]scale=1920:1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][s1]"
    assert graph[2] == "[s1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][s2]"
    assert graph[3] == "[s2]scale=854:480:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][s3]"
    # The mobile rung halves the 480p rung's 60 fps, from its frames.
    assert graph[4] == "[s3]fps=30,scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v3]"


def test_without_cascade_the_source_is_split_once() -> None:
    planned = plan_ladder(1920, 1080, 60, DEFAULT_RUNGS)
    graph = ladder_args(planned, probe(1920, 1080, 60), ProcessingConfig())[1].split(";")
    assert graph[0] == "[0:v:0]yadif=deint=interlaced,split=4[s0][s1][s2][s3]"
    assert all(step.endswith(f"[v{i}]") for i, step in enumerate(graph[1:]))


@pytest.mark.parametrize(
    ("cpus", "threads", "overlap"),
    [
        (2, 0, False),  # FFMPEG_THREADS=0: ffmpeg may use every core already
        (8, 0, False),
        (1, 1, False),
        (2, 1, True),
        (4, 2, True),
        (4, 4, False),
        (2, 4, False),
    ],
)
def test_stills_overlap_only_with_cores_to_spare(cpus: int, threads: int, overlap: bool) -> None:
    assert stills_can_overlap(cpus, threads) is overlap

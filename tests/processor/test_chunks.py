"""Where a long video is split and the arguments of its parts (pure functions)."""

from __future__ import annotations

import pytest

from videoforge.processor.chunks import PartPlan, grid_step, part_args, plan_parts, shared_args
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ladder import plan_ladder
from videoforge.processor.probe import ProbeResult
from videoforge.processor.storyboard import plan_storyboard

ON = ProcessingConfig(chunk_min_seconds=60, chunk_seconds=30)
EVERY_SECOND = [float(t) for t in range(0, 400)]


def test_parts_fall_on_the_segment_grid_from_the_keyframe_before() -> None:
    keyframes = [0.0, 2.5, 27.0, 31.0, 58.5, 61.0, 89.0, 93.0]
    parts = plan_parts(100.0, keyframes, ON)
    # 30 s rounded to the 4 s grid: 32 s; 100 s in three parts, the last one longer.
    assert parts == [
        PartPlan(0, 0.0, 32.0, 0.0, 58.5),
        PartPlan(1, 32.0, 64.0, 31.0, 89.0),
        PartPlan(2, 64.0, None, 61.0, None),
    ]


@pytest.mark.parametrize(
    ("duration", "config", "why"),
    [
        (600.0, ProcessingConfig(), "chunking off (0)"),
        (60.0, ON, "not longer than the minimum"),
        (61.0, ProcessingConfig(chunk_min_seconds=60, chunk_seconds=90), "one part only"),
    ],
)
def test_a_video_is_not_split_when(duration: float, config: ProcessingConfig, why: str) -> None:
    assert plan_parts(duration, EVERY_SECOND, config) is None, why


def test_keyframes_too_far_apart_keep_a_video_whole() -> None:
    assert plan_parts(300.0, [0.0, 100.0, 200.0], ON) is None


def test_part_length_is_rounded_to_the_grid_and_the_last_takes_the_rest() -> None:
    parts = plan_parts(130.0, EVERY_SECOND, ON)
    assert parts is not None
    assert grid_step(ON) == 4.0
    assert [(p.start, p.end) for p in parts] == [
        (0.0, 32.0),
        (32.0, 64.0),
        (64.0, 96.0),
        (96.0, None),
    ]
    assert [p.cut_from for p in parts] == [0.0, 32.0, 64.0, 96.0]
    assert [p.cut_to for p in parts] == [33.0, 65.0, 97.0, None]


def _probe() -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4", duration=130.0, size=1, bit_rate=None, width=854, height=480,
        coded_width=854, coded_height=480, rotation=0, fps=30.0, video_codec="h264",
        audio_codec=None, has_audio=False, stream_count=1,
    )  # fmt: skip


def test_a_parts_ladder_trims_its_span_on_the_whole_timeline_video_only() -> None:
    probe = _probe()
    renditions = plan_ladder(854, 480, 30.0, ON.rungs, max_fps=ON.max_fps)
    first = part_args(PartPlan(0, 0.0, 28.0, 0.0, 29.0), renditions, probe, ON, origin=0.0)
    later = part_args(PartPlan(2, 56.0, 84.0, 55.0, 85.0), renditions, probe, ON, origin=0.5)
    assert first[0] == "-copyts"
    graph = later[later.index("-filter_complex") + 1]
    assert graph.startswith("[0:v:0]trim=start=56.500000:end=84.500000,setpts=PTS-0.500000/TB,")
    grids = [later[i + 1] for i, a in enumerate(later) if a.startswith("-force_key_frames")]
    assert grids == ["expr:gte(t,n_forced*2+56.000000)"] * len(renditions)
    tee = later[-1]
    assert ":f=mp4:" not in tee  # no per-part MP4: the stitch joins them
    assert not any(a.startswith("[a") for a in later)  # no audio
    assert tee.count("hls_segment_options=movflags\\=+frag_discont") == len(renditions)
    assert "frag_discont" not in first[-1]  # the first part is as an unchunked run


def test_the_shared_run_without_audio_makes_only_the_storyboard() -> None:
    probe = _probe()
    args = shared_args(probe, ON, [], plan_storyboard(130.0, 854, 480, ON))
    assert "tee" not in args
    assert "-flags" not in args

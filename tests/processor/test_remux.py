"""The remux decision: a pure function of probe facts, the top rung and the limit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from videoforge.processor.config import DEFAULT_RUNGS
from videoforge.processor.ladder import plan_ladder
from videoforge.processor.probe import ProbeResult
from videoforge.processor.remux import (
    MAX_KEYFRAME_LIST_CHARS,
    KeyframeScan,
    RemuxDecision,
    RemuxReason,
    decide_remux,
    keyframe_list,
    parse_keyframe_scan,
)

# A 10 s 1080p30 H.264 High source at 5 Mb/s: what a phone or an editor exports.
PROBE = ProbeResult(
    format_name="mov,mp4,m4a,3gp,3g2,mj2",
    duration=10.0,
    size=6_500_000,
    bit_rate=5_200_000,
    width=1920,
    height=1080,
    coded_width=1920,
    coded_height=1080,
    rotation=0,
    fps=30.0,
    video_codec="h264",
    audio_codec="aac",
    has_audio=True,
    stream_count=2,
    video_profile="High",
    pix_fmt="yuv420p",
    field_order="progressive",
    video_bit_rate=5_000_000,
)
TOP = plan_ladder(1920, 1080, 30.0, DEFAULT_RUNGS)[0]  # 1080p: 6 Mb/s, 12 Mbit buffer
GOP2 = KeyframeScan(
    keyframes=(0.0, 2.0, 4.0, 6.0, 8.0),
    duration=10.0,
    average_bit_rate=5_000_000,
    gop_bits=(10_000_000,) * 5,
)


def decide(
    probe: ProbeResult = PROBE, scan: KeyframeScan | None = GOP2, limit: float = 4.0
) -> RemuxDecision:
    return decide_remux(probe, TOP, limit, scan)


def test_a_compatible_source_is_copied_with_its_keyframe_times() -> None:
    decision = decide()
    assert decision.remux is True
    assert decision.reason is RemuxReason.COMPATIBLE
    assert decision.keyframes == (0.0, 2.0, 4.0, 6.0, 8.0)
    assert decision.to_dict()["reason"] == "compatible"


@pytest.mark.parametrize("profile", ["Main", "Constrained Baseline"])
def test_main_and_constrained_baseline_are_copied_too(profile: str) -> None:
    assert decide(replace(PROBE, video_profile=profile)).remux is True


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"format_name": "mpegts"}, RemuxReason.CONTAINER),
        ({"format_name": "matroska,webm"}, RemuxReason.CONTAINER),
        ({"video_codec": "hevc"}, RemuxReason.CODEC),
        ({"video_codec": "vp9"}, RemuxReason.CODEC),
        ({"video_profile": "High 10"}, RemuxReason.PROFILE),
        ({"video_profile": "Baseline"}, RemuxReason.PROFILE),
        ({"video_profile": "High 4:4:4 Predictive"}, RemuxReason.PROFILE),
        ({"video_profile": None}, RemuxReason.PROFILE),
        ({"pix_fmt": "yuv420p10le"}, RemuxReason.PIXEL_FORMAT),
        ({"pix_fmt": "yuvj420p"}, RemuxReason.PIXEL_FORMAT),
        ({"pix_fmt": "yuv422p"}, RemuxReason.PIXEL_FORMAT),
        ({"field_order": "tt"}, RemuxReason.INTERLACED),
        ({"field_order": None}, RemuxReason.INTERLACED),
        # Rotated: the copy would keep the display matrix the encoded rungs apply.
        ({"rotation": 90, "width": 1080, "height": 1920}, RemuxReason.GEOMETRY),
        # Non-square pixels: coded 1440x1080 shown as 1920x1080.
        ({"coded_width": 1440}, RemuxReason.GEOMETRY),
        # Larger than the top rung (2560x1440 in the 1080p box is not the rung's size).
        ({"width": 1930, "coded_width": 1930}, RemuxReason.GEOMETRY),
        ({"fps": 60.0}, RemuxReason.FRAME_RATE),
        ({"video_bit_rate": 6_000_001}, RemuxReason.BITRATE),
    ],
)
def test_what_the_probe_rules_out(change: dict[str, Any], reason: RemuxReason) -> None:
    decision = decide(replace(PROBE, **change))
    assert (decision.remux, decision.reason) == (False, reason)
    assert decision.detail
    assert decision.keyframes == ()


def test_a_source_at_a_lower_rung_is_compared_with_that_rung() -> None:
    # 1280x720 tops out at the 720p rung (3 Mb/s): 5 Mb/s is too much there.
    small = replace(PROBE, width=1280, height=720, coded_width=1280, coded_height=720)
    top = plan_ladder(1280, 720, 30.0, DEFAULT_RUNGS)[0]
    assert decide_remux(small, top, 4.0, GOP2).reason is RemuxReason.BITRATE
    slim = replace(GOP2, average_bit_rate=2_000_000, gop_bits=(4_000_000,) * 5)
    assert decide_remux(replace(small, video_bit_rate=None), top, 4.0, slim).remux is True


def test_an_unknown_stream_bitrate_waits_for_the_scan() -> None:
    # Matroska gives no per-stream bitrate: the probe passes it on, the scan measures it.
    probe = replace(PROBE, video_bit_rate=None)
    assert decide(probe, scan=None).reason is RemuxReason.UNSCANNED
    heavy = replace(GOP2, average_bit_rate=7_000_000)
    assert decide(probe, heavy).reason is RemuxReason.BITRATE


def test_a_burst_beyond_the_buffer_is_not_copied() -> None:
    # 2 s may hold 6 Mb/s x 2 s + the 12 Mbit buffer = 24 Mbit, not one bit more.
    at_limit = replace(GOP2, gop_bits=(24_000_000, *GOP2.gop_bits[1:]))
    assert decide(scan=at_limit).remux is True
    burst = replace(GOP2, gop_bits=(24_000_001, *GOP2.gop_bits[1:]))
    assert decide(scan=burst).reason is RemuxReason.BITRATE


@pytest.mark.parametrize(
    ("keyframes", "duration", "limit", "remux"),
    [
        ((0.0, 2.0, 4.0, 6.0, 8.0), 10.0, 4.0, True),
        ((0.0, 4.0, 8.0), 10.0, 4.0, True),  # exactly at the limit
        ((0.0, 4.0, 8.0), 10.0, 3.9, False),
        ((0.0, 1.0, 5.5, 8.0), 10.0, 4.0, False),  # one long GOP in the middle
        ((0.0, 2.0, 4.0), 10.0, 4.0, False),  # the last keyframe to the end: 6 s
        ((0.0,), 3.5, 4.0, True),  # a short clip with one keyframe
        ((0.5, 2.5, 4.5), 6.0, 4.0, False),  # does not start on a keyframe
        ((), 6.0, 4.0, False),
    ],
)
def test_keyframe_spacing(
    keyframes: tuple[float, ...], duration: float, limit: float, remux: bool
) -> None:
    scan = KeyframeScan(keyframes, duration, 5_000_000, (1_000_000,) * len(keyframes))
    decision = decide(scan=scan, limit=limit)
    assert decision.remux is remux
    if not remux:
        assert decision.reason is RemuxReason.KEYFRAMES


def test_remuxing_can_be_turned_off() -> None:
    assert decide(limit=0).reason is RemuxReason.DISABLED


def test_too_many_keyframes_to_list_are_encoded() -> None:
    times = tuple(i * 0.5 for i in range(20_000))
    scan = KeyframeScan(times, 10_000.0, 5_000_000, (1_000_000,) * len(times))
    assert len(keyframe_list(times)) > MAX_KEYFRAME_LIST_CHARS
    assert decide(scan=scan).reason is RemuxReason.KEYFRAMES


def test_keyframe_list_rounds_down_to_the_microsecond() -> None:
    # 60 frames at 29.97 fps is 2.002 s; a frame stamped there must be the one forced.
    assert keyframe_list([0.0, 60 * 1001 / 30000, 1.5, 12.3456789]) == "0,2.002,1.5,12.345678"


def test_parse_scan_of_a_b_frame_stream() -> None:
    text = "\n".join(
        [
            "packet,0.000000,-0.066667,0.033333,4000,K_",
            "packet,0.100000,-0.033333,0.033333,1000,__",
            "packet,0.033333,0.000000,0.033333,1000,__",
            "packet,0.066667,0.033333,0.033333,1000,__",
            "packet,2.000000,1.933333,0.033333,3000,K_",
            "packet,2.033333,2.000000,0.033333,N/A,__",  # no size: skipped
            "packet,N/A,2.033333,0.033333,500,__",  # no pts: its dts stands in
            "format,0.000000",
        ]
    )
    scan = parse_keyframe_scan(text)
    assert scan is not None
    assert scan.keyframes == (0.0, 2.0)
    assert scan.duration == pytest.approx(2.066666)  # the last packet kept ends there
    assert scan.gop_bits == (7000 * 8, 3500 * 8)
    assert scan.max_interval == pytest.approx(2.0)
    assert scan.average_bit_rate == pytest.approx(10_500 * 8 / 2.066666, abs=1)


def test_parse_scan_times_are_relative_to_the_file_start() -> None:
    text = "packet,10.5,10.5,0.04,100,K_\npacket,12.5,12.5,0.04,100,K_\nformat,10.0\n"
    scan = parse_keyframe_scan(text)
    assert scan is not None
    assert scan.keyframes == (0.5, 2.5)  # the video starts 0.5 s in: not on a keyframe
    assert decide(scan=replace(scan, average_bit_rate=1)).reason is RemuxReason.KEYFRAMES


def test_parse_scan_of_nothing() -> None:
    assert parse_keyframe_scan("") is None
    assert parse_keyframe_scan("format,0.0\nnot,a,packet\n") is None

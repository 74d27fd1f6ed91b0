"""The pipeline offers three thumbnail candidates, taken at distinct points through the
video, and the COMPLETED event carries their keys in time order."""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from videoforge.jobs.models import Job
from videoforge.processor import passes, pipeline
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import process_file
from videoforge.processor.probe import ProbeResult
from videoforge.processor.publisher import completed_fields
from videoforge.processor.stills import StillsPlan, plan_stills, stills_args

CONFIG = ProcessingConfig(threads=1, preset="ultrafast")
SECONDS = 8.0


def _fade_in(path: Path) -> Path:
    """A grey picture whose brightness grows with time: a frame's luma says when it is."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=gray:s=320x240:r=25:d={SECONDS:g}",
            "-vf", f"format=yuv420p,geq=lum='16+220*T/{SECONDS:g}':cb=128:cr=128",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def _luma(path: Path) -> float:
    with Image.open(path) as image:
        return float(ImageStat.Stat(image.convert("L")).mean[0])


async def test_three_candidates_at_distinct_times(tmp_path: Path) -> None:
    source = _fade_in(tmp_path / "fade.mp4")
    result = await process_file(source, tmp_path / "job", CONFIG)

    assert result.thumbnail_candidates == [
        "thumbnails/1.jpg",
        "thumbnails/2.jpg",
        "thumbnails/3.jpg",
    ]
    # A JPEG's luma is full range: 0 at the start of the fade, 255 at its end.
    times = [_luma(result.output_dir / k) / 255 * SECONDS for k in result.thumbnail_candidates]
    # Each from the second of video around 25 %, 50 % and 75 % of the way through.
    for taken, at in zip(times, (0.25, 0.5, 0.75), strict=True):
        assert abs(taken - SECONDS * at) <= 0.6, times
    assert times[0] < times[1] < times[2]
    for key in result.thumbnail_candidates:
        with Image.open(result.output_dir / key) as image:
            assert image.format == "JPEG"
            assert image.size == (320, 240)
    # Listed as stills, so they are uploaded with the other outputs.
    kinds = {o.rel_key: o.kind for o in result.outputs}
    assert all(kinds[key] == "thumbnail" for key in result.thumbnail_candidates)

    job = Job(id=uuid.uuid4(), source_key=None)
    fields = completed_fields(job, result)
    assert fields["thumbnail_candidates"] == [
        f"outputs/{job.id}/thumbnails/{n}.jpg" for n in (1, 2, 3)
    ]


def _probe(duration: float) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        size=1000,
        bit_rate=None,
        width=320,
        height=240,
        coded_width=320,
        coded_height=240,
        rotation=0,
        fps=25.0,
        video_codec="h264",
        audio_codec=None,
        has_audio=False,
        stream_count=1,
    )


def test_candidate_windows_are_centred_on_a_quarter_a_half_and_three_quarters() -> None:
    plan = plan_stills(_probe(60.0), CONFIG)
    assert (plan.candidates, plan.candidate_window) == ((14.5, 29.5, 44.5), 1.0)


def test_short_videos_keep_their_candidates_apart_and_inside() -> None:
    probe = _probe(0.8)
    plan = plan_stills(probe, CONFIG)
    assert len(set(plan.candidates)) == 3
    assert all(at >= 0 and at + plan.candidate_window <= probe.duration for at in plan.candidates)


@pytest.mark.parametrize(
    ("rate", "seconds"),
    [(10, 1.0), (1, 1.0), (30, 0.1)],  # an eighth of a second is one frame; one frame
)
async def test_very_short_videos_still_get_their_candidates(
    tmp_path: Path, rate: int, seconds: float
) -> None:
    # A candidate window shorter than a frame decoded nothing, and thumbnail= refuses a
    # batch of one frame: both failed the whole job as corrupt media.
    source = tmp_path / "short.mp4"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s=64x48:r={rate}:d={seconds:g}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(source),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    result = await process_file(source, tmp_path / "job", CONFIG)
    assert len(result.thumbnail_candidates) == 3
    for key in [result.thumbnail, *result.thumbnail_candidates]:
        with Image.open(result.output_dir / key) as image:
            assert image.format == "JPEG"


def _past_the_end(probe: ProbeResult, config: ProcessingConfig) -> StillsPlan:
    # Windows past the end of the video: they decode nothing (ffmpeg still exits 0).
    plan = plan_stills(probe, config)
    return replace(plan, candidates=tuple(probe.duration + n for n in (5.0, 6.0, 7.0)))


def _refused(plan: StillsPlan, probe: ProbeResult, config: ProcessingConfig) -> list[str]:
    # A candidate branch ffmpeg refuses (as thumbnail= refused a batch of one frame):
    # the whole run with the candidates exits non-zero.
    args = stills_args(plan, probe, config)
    return [re.sub(r"(\[\d:v:0\][^;]*thumbnail=)\d+", r"\g<1>0", a) for a in args]


@pytest.mark.parametrize("trouble", ["past_the_end", "refused"])
async def test_a_candidate_that_cannot_be_made_never_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trouble: str
) -> None:
    source = _fade_in(tmp_path / "fade.mp4")
    if trouble == "past_the_end":
        monkeypatch.setattr(pipeline, "plan_stills", _past_the_end)
    else:
        monkeypatch.setattr(passes, "stills_args", _refused)
    result = await process_file(source, tmp_path / "job", CONFIG)
    assert result.thumbnail_candidates == []
    assert not any(o.rel_key.startswith("thumbnails/") for o in result.outputs)
    for still in (result.thumbnail, result.preview):
        assert (result.output_dir / still).stat().st_size > 0

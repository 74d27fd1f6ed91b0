"""ETA and queue position decisions, on plain values."""

from __future__ import annotations

import pytest

from videoforge.jobs.eta import (
    DEFAULT_JOB_SECONDS,
    DEFAULT_SPEED,
    OVERHEAD_SECONDS,
    Done,
    Running,
    Throughput,
    Waiting,
    queued_eta,
    remaining,
)

#: Workers that did 60 s of 1080p in 20 s of work (3x real time) and 60 s of 480p in 10 s.
MEASURED = Throughput.measure(
    [Done(60, 1080, 20 + OVERHEAD_SECONDS)] * 3 + [Done(60, 360, 10 + OVERHEAD_SECONDS)] * 3
)


def test_throughput_is_measured_per_height_band() -> None:
    assert MEASURED.speed(1080) == pytest.approx(3.0)
    assert MEASURED.speed(720) == pytest.approx(MEASURED.overall)  # no 720p history
    assert MEASURED.speed(480) == pytest.approx(6.0)
    assert MEASURED.expected(120, 1080) == pytest.approx(40 + OVERHEAD_SECONDS)


def test_without_history_the_defaults_apply() -> None:
    empty = Throughput.measure([])
    assert empty.speed(1080) == DEFAULT_SPEED
    assert empty.expected(None, None) == DEFAULT_JOB_SECONDS
    assert empty.expected(30, 720) == pytest.approx(30 / DEFAULT_SPEED + OVERHEAD_SECONDS)


@pytest.mark.parametrize(
    ("progress", "elapsed", "expected"),
    [
        (0, 0, 45.0),  # nothing done yet: the measured prior (120 s of 1080p)
        (0, 10, 35.0),  # ...less what has already gone
        (50, 30, 30.0),  # half-way in 30 s: its own pace, 30 s more
        (90, 54, 6.0),
        (100, 70, 0.0),
    ],
)
def test_a_running_job_moves_from_the_prior_to_its_own_pace(
    progress: int, elapsed: float, expected: float
) -> None:
    job = Running(progress=progress, duration=120, height=1080, elapsed=elapsed)
    assert remaining(job, MEASURED) == pytest.approx(expected, abs=0.01)


def test_the_eta_falls_as_progress_rises_at_a_steady_pace() -> None:
    pace = 0.6  # seconds of work per percent
    etas = [
        remaining(Running(progress=p, duration=120, height=1080, elapsed=p * pace), MEASURED)
        for p in range(0, 101, 5)
    ]
    assert etas == sorted(etas, reverse=True)
    assert etas[-1] == 0


def test_a_queued_job_waits_for_the_work_ahead_shared_by_the_busy_workers() -> None:
    own = Waiting(duration=60, height=1080)  # 25 s of its own
    ahead = [Waiting(duration=60, height=1080)] * 2  # 2 x 25 s
    running = [Running(progress=50, duration=120, height=1080, elapsed=30)]  # 30 s left
    one_worker = queued_eta(own, ahead, running, MEASURED)
    assert one_worker == pytest.approx(30 + 50 + 25)
    two_workers = queued_eta(own, ahead, running * 2, MEASURED)
    assert two_workers == pytest.approx((60 + 50) / 2 + 25)
    first_in_line = queued_eta(own, [], running, MEASURED)
    assert first_in_line < one_worker

"""The one progress throttle: increasing whole percentages, at most one a second, the
newest one, never lost, and 100 always."""

from __future__ import annotations

import pytest

from videoforge.processor.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


async def _progress(clock: _Clock) -> tuple[Progress, list[int]]:
    seen: list[int] = []

    async def record(value: int) -> None:
        seen.append(value)

    return Progress(record, interval=1.0, clock=clock), seen


async def test_values_never_go_down_and_an_unchanged_value_is_not_written_again(
    clock: _Clock,
) -> None:
    progress, seen = await _progress(clock)
    await progress.report(10)
    for value in (5, 10.7, 10):
        clock.now += 2
        await progress.report(value)
    assert seen == [10]


async def test_at_most_one_value_per_interval_and_the_held_one_goes_out_next(
    clock: _Clock,
) -> None:
    progress, seen = await _progress(clock)
    await progress.report(1)
    clock.now += 0.3
    await progress.report(2)
    clock.now += 0.3
    await progress.report(3)  # held: 0.6 s after the last write
    assert seen == [1]
    clock.now += 0.5
    await progress.report(3)  # the same value again, after the interval: the held 3
    assert seen == [1, 3]
    assert progress.sent == 3


async def test_one_hundred_always_goes_out_and_values_are_clamped(clock: _Clock) -> None:
    progress, seen = await _progress(clock)
    await progress.report(-4)
    await progress.report(250)  # within the interval, but the end is never held back
    assert seen == [0, 100]
    clock.now += 5
    await progress.report(100)
    assert seen == [0, 100]


async def test_without_a_callback_nothing_is_sent(clock: _Clock) -> None:
    progress = Progress(None, clock=clock)
    await progress.report(50)
    assert progress.sent == -1

"""The worker's decisions as pure functions, table-tested: owner liveness, what to do
after a failed attempt, and room on the work disk."""

from __future__ import annotations

import errno

import pytest

from videoforge.jobs.runs import Liveness, owner_liveness
from videoforge.processor.failures import failure_kind
from videoforge.processor.fetch import FetchFailed, FetchRejected
from videoforge.processor.ffmpeg import MediaRejected, ToolError
from videoforge.processor.policy import (
    FailureKind,
    RetryAction,
    RetryDecision,
    bytes_needed,
    decide_retry,
    decline_delay,
    extend_interval,
    heartbeat_interval,
    may_take_work,
    stale_after,
)
from videoforge.processor.resources import LocalResourceError

MiB = 1024**2


# ------------------------------------------------------------------------- liveness
@pytest.mark.parametrize(
    ("visibility", "interval", "stale"),
    [
        (300, 2.0, 32.0),  # AWS: a heartbeat every 2 s, dead after 32 s of silence
        (60, 2.0, 17.0),  # the default
        (6, 2.0, 3.5),
        (3, 1.0, 1.75),
        (2, 2 / 3, 7 / 6),  # the worker tests
        (1, 1 / 3, 7 / 12),
        (43200, 2.0, 32.0),  # SQS's longest visibility timeout
    ],
)
def test_heartbeat_interval_and_staleness(visibility: int, interval: float, stale: float) -> None:
    assert heartbeat_interval(visibility) == pytest.approx(interval)
    assert stale_after(visibility) == pytest.approx(stale)


@pytest.mark.parametrize("visibility", [1, 2, 3, 5, 6, 7, 10, 30, 60, 100, 300, 900, 43200])
def test_a_dead_owners_redelivery_always_finds_its_heartbeat_stale(visibility: int) -> None:
    # A dead owner's message returns one timeout after its last extension; its last
    # heartbeat was written at most one extension interval before that extension... and
    # at least right after it. So the redelivery sees an age of at least
    # visibility - extend_interval: the staleness threshold must not be above that, or
    # the job waits a second timeout (the bug: the threshold was the whole timeout).
    youngest_redelivered_age = visibility - extend_interval(visibility)
    assert stale_after(visibility) < youngest_redelivered_age
    assert not owner_liveness(youngest_redelivered_age, stale_after=stale_after(visibility)).alive
    # And a live owner, which beats every heartbeat_interval, is never declared dead by
    # a heartbeat that is merely one interval old (there is a margin).
    assert stale_after(visibility) > heartbeat_interval(visibility)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (None, Liveness(alive=False)),  # never beat
        (0.0, Liveness(alive=True, stale_in=32.0)),
        (2.0, Liveness(alive=True, stale_in=30.0)),
        (31.5, Liveness(alive=True, stale_in=0.5)),
        (32.0, Liveness(alive=False)),
        (200.0, Liveness(alive=False)),  # the old rule (stale after 300 s) called this alive
        (-5.0, Liveness(alive=True, stale_in=32.0)),  # the owner's clock is ahead
    ],
)
def test_owner_liveness(age: float | None, expected: Liveness) -> None:
    assert owner_liveness(age, stale_after=32.0) == expected


# ---------------------------------------------------------------------------- retry
@pytest.mark.parametrize(
    ("kind", "receive_count", "declined_here", "expected"),
    [
        (FailureKind.PERMANENT, 1, 0, RetryDecision(RetryAction.FAIL)),
        (FailureKind.PERMANENT, 5, 0, RetryDecision(RetryAction.FAIL)),
        (FailureKind.TRANSIENT, 1, 0, RetryDecision(RetryAction.RELEASE, delay=5)),
        (FailureKind.TRANSIENT, 3, 0, RetryDecision(RetryAction.RELEASE, delay=20)),
        (FailureKind.TRANSIENT, 5, 0, RetryDecision(RetryAction.GIVE_UP)),
        (FailureKind.TRANSIENT, 9, 0, RetryDecision(RetryAction.GIVE_UP)),
        # The machine's fault: at once, never counted, never given up on...
        (FailureKind.LOCAL_RESOURCE, 1, 1, RetryDecision(RetryAction.RELEASE, 0, counts=False)),
        (FailureKind.LOCAL_RESOURCE, 5, 1, RetryDecision(RetryAction.RELEASE, 0, counts=False)),
        (FailureKind.LOCAL_RESOURCE, 50, 1, RetryDecision(RetryAction.RELEASE, 0, counts=False)),
        # ...only delayed when this same worker keeps getting it back without room.
        (FailureKind.LOCAL_RESOURCE, 2, 2, RetryDecision(RetryAction.RELEASE, 5, counts=False)),
        (FailureKind.LOCAL_RESOURCE, 3, 3, RetryDecision(RetryAction.RELEASE, 10, counts=False)),
        (FailureKind.LOCAL_RESOURCE, 9, 30, RetryDecision(RetryAction.RELEASE, 900, counts=False)),
    ],
)
def test_decide_retry(
    kind: FailureKind, receive_count: int, declined_here: int, expected: RetryDecision
) -> None:
    decision = decide_retry(
        kind,
        receive_count=receive_count,
        max_receives=5,
        backoff_base=5,
        declined_here=declined_here,
    )
    assert decision == expected


@pytest.mark.parametrize(
    ("receive_count", "expected"),
    [
        # ffmpeg's word only (quota, EIO, or "no space" on a disk that has room): still
        # released at once, but counted, so a file cannot get itself retried forever.
        (1, RetryDecision(RetryAction.RELEASE, delay=0)),
        (4, RetryDecision(RetryAction.RELEASE, delay=0)),
        (5, RetryDecision(RetryAction.GIVE_UP)),
    ],
)
def test_decide_retry_unverified_local_resource(
    receive_count: int, expected: RetryDecision
) -> None:
    decision = decide_retry(
        FailureKind.LOCAL_RESOURCE,
        receive_count=receive_count,
        max_receives=5,
        declined_here=1,
        verified=False,
    )
    assert decision == expected


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (MediaRejected("corrupt_media", "bad"), FailureKind.PERMANENT),
        (FetchRejected("blocked_address", "no"), FailureKind.PERMANENT),
        (LocalResourceError("no_space", "ffmpeg could not write"), FailureKind.LOCAL_RESOURCE),
        (LocalResourceError("declined", "needs more room"), FailureKind.LOCAL_RESOURCE),
        (OSError(errno.ENOSPC, "No space left on device"), FailureKind.LOCAL_RESOURCE),
        (OSError(errno.EROFS, "Read-only file system"), FailureKind.LOCAL_RESOURCE),
        (OSError(errno.ECONNREFUSED, "Connection refused"), FailureKind.TRANSIENT),
        (FetchFailed("network_error", "broke off"), FailureKind.TRANSIENT),
        (ToolError(["ffmpeg"], -9, "killed"), FailureKind.TRANSIENT),
        (RuntimeError("database went away"), FailureKind.TRANSIENT),
    ],
)
def test_failure_kind(exc: BaseException, kind: FailureKind) -> None:
    assert failure_kind(exc) is kind


def _rejected_during_enospc() -> None:
    # E.g. reading back an output that could not be written.
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise MediaRejected("corrupt_media", "No video could be decoded.") from None


def test_a_media_rejection_caused_by_a_full_disk_is_the_machines() -> None:
    with pytest.raises(MediaRejected) as raised:
        _rejected_during_enospc()
    assert failure_kind(raised.value) is FailureKind.LOCAL_RESOURCE


# ------------------------------------------------------------------------ disk room
@pytest.mark.parametrize(
    ("size", "factor", "floor", "needed"),
    [
        (None, 3.0, 256 * MiB, 256 * MiB),  # unknown size: the floor
        (0, 3.0, 256 * MiB, 256 * MiB),
        (100 * MiB, 3.0, 256 * MiB, 556 * MiB),
        (5 * 1024 * MiB, 3.0, 256 * MiB, 15 * 1024 * MiB + 256 * MiB),
        (10, 1.5, 0, 15),
        (11, 1.5, 0, 17),  # rounded up
    ],
)
def test_bytes_needed(size: int | None, factor: float, floor: int, needed: int) -> None:
    assert bytes_needed(size, factor=factor, floor=floor) == needed


@pytest.mark.parametrize(("times", "delay"), [(0, 0), (1, 0), (2, 5), (3, 10), (4, 20), (10, 900)])
def test_decline_delay(times: int, delay: int) -> None:
    assert decline_delay(times, base=5) == delay


@pytest.mark.parametrize(
    ("free", "wanted", "paused_for", "may"),
    [
        (50, 200, 0.0, False),  # below the floor: never
        (50, 200, 1e6, False),
        (150, 200, 0.0, False),  # above the floor, not the room it lacked, cooldown running
        (150, 200, 29.9, False),
        (150, 200, 30.0, True),  # cooldown over: others had their chance, take smaller jobs
        (200, 200, 0.0, True),  # the room it lacked is back
        (100, 100, 0.0, True),
    ],
)
def test_may_take_work(free: int, wanted: int, paused_for: float, may: bool) -> None:
    assert (
        may_take_work(free, floor=100, wanted=wanted, paused_for=paused_for, cooldown=30.0) is may
    )

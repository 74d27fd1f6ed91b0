"""The worker's decisions as pure functions: plain values in, plain values out.

The worker only carries out what these decide, so each rule is table-tested in
milliseconds (``tests/processor/worker/test_policy.py``):

- **liveness** timing of a running job's owner (:func:`heartbeat_interval`,
  :func:`stale_after`; the rule applied to a heartbeat's age is the job domain's,
  :func:`videoforge.jobs.runs.owner_liveness`);
- **what to do after a failed attempt** (:func:`decide_retry`, :func:`retry_backoff`);
- **room on the work disk** (:func:`bytes_needed`, :func:`decline_delay`,
  :func:`may_take_work`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

#: A live owner writes its heartbeat at least this often (seconds), whatever the timeout.
HEARTBEAT_MAX_INTERVAL = 2.0
#: Shortest heartbeat interval (very short visibility timeouts, tests).
HEARTBEAT_MIN_INTERVAL = 0.2
#: Upper bound of the slack given to a late heartbeat (slow database, clock skew).
LIVENESS_MARGIN_MAX = 30.0
#: Transient-failure backoff: base * 2**(receive_count - 1), capped.
RETRY_BACKOFF_BASE_SECONDS = 5
RETRY_BACKOFF_MAX_SECONDS = 900


# ------------------------------------------------------------------------- liveness
def extend_interval(visibility: float) -> float:
    """Seconds between a running job's visibility extensions (a third of the timeout)."""
    return max(HEARTBEAT_MIN_INTERVAL, visibility / 3)


def heartbeat_interval(visibility: float) -> float:
    """Seconds between a live owner's ``heartbeat_at`` writes.

    This, not the visibility timeout, is what a live owner guarantees: it touches the row
    every couple of seconds even when it extends the message only every third of the
    timeout.
    """
    return min(extend_interval(visibility), HEARTBEAT_MAX_INTERVAL)


def liveness_margin(visibility: float) -> float:
    """Slack for a late heartbeat: a slow database write, a busy event loop, clock skew
    between the owner and the claimer (each stamps ``heartbeat_at`` with its own clock).

    A quarter of the timeout, at most :data:`LIVENESS_MARGIN_MAX`: with a third, short
    timeouts would put the threshold exactly on the earliest redelivery.
    """
    return min(visibility / 4, LIVENESS_MARGIN_MAX)


def stale_after(visibility: float) -> float:
    """Age (seconds) past which a running job's heartbeat means its owner is dead.

    Below ``visibility - extend_interval(visibility)``: a dead owner's message comes
    back at most one visibility timeout after its last extension, and its last heartbeat
    was written right after that extension, so the redelivery always finds the heartbeat
    stale and reclaims the job at once (a threshold of a whole timeout would still see
    it as alive and hide the message for a second timeout).
    """
    return heartbeat_interval(visibility) + liveness_margin(visibility)


# ---------------------------------------------------------------------------- retry
class FailureKind(StrEnum):
    #: The media or the URL: retrying cannot help.
    PERMANENT = "permanent"
    #: The worker's machine (disk full, quota, read-only or failing disk): another
    #: worker, or this one with room again, can do it.
    LOCAL_RESOURCE = "local_resource"
    #: Anything else (storage, queue, database, network, a crashed ffmpeg).
    TRANSIENT = "transient"


class RetryAction(StrEnum):
    FAIL = "fail"  # FAILED with the reason, message deleted
    RELEASE = "release"  # PENDING, message visible after ``delay``
    GIVE_UP = "give_up"  # FAILED ("gave up after N attempts"), message to the DLQ


@dataclass(frozen=True)
class RetryDecision:
    action: RetryAction
    delay: int = 0
    #: Whether the attempt counts against the job's budget (``attempts`` and the
    #: queue's receive count, which sends the message to the dead-letter queue).
    counts: bool = True


def retry_backoff(receive_count: int, *, base: float = RETRY_BACKOFF_BASE_SECONDS) -> int:
    """Seconds a transiently failed message stays invisible before its next attempt."""
    exponent = max(0, receive_count - 1)
    return int(min(RETRY_BACKOFF_MAX_SECONDS, max(1.0, base * 2**exponent)))


def decide_retry(
    kind: FailureKind,
    *,
    receive_count: int,
    max_receives: int,
    backoff_base: float = RETRY_BACKOFF_BASE_SECONDS,
    declined_here: int = 0,
    verified: bool = True,
) -> RetryDecision:
    """What to do with a job whose attempt failed.

    A local-resource failure is the machine's, never the job's: it is released at once
    for another worker. When this machine confirmed it (``verified``) the attempt does
    not count (the job keeps its whole budget, whatever its receive count); only when
    this same worker keeps getting it back without having more room
    (``declined_here`` > 1) is it delayed, so a job no worker has room for waits in the
    queue instead of spinning through it. An unverified one (ffmpeg's word only, which
    a hostile file might imitate) is released at once too but counts, up to the last
    receive.
    """
    if kind is FailureKind.PERMANENT:
        return RetryDecision(RetryAction.FAIL)
    if kind is FailureKind.LOCAL_RESOURCE and verified:
        return RetryDecision(
            RetryAction.RELEASE, delay=decline_delay(declined_here, base=backoff_base), counts=False
        )
    if kind is FailureKind.LOCAL_RESOURCE:
        if receive_count >= max_receives:
            return RetryDecision(RetryAction.GIVE_UP)
        return RetryDecision(RetryAction.RELEASE, delay=0)
    if receive_count >= max_receives:
        return RetryDecision(RetryAction.GIVE_UP)
    return RetryDecision(RetryAction.RELEASE, delay=retry_backoff(receive_count, base=backoff_base))


# ------------------------------------------------------------------------ disk room
def bytes_needed(source_size: int | None, *, factor: float, floor: int) -> int:
    """Free bytes a job needs in the work dir before it starts: the source plus its
    outputs, estimated as ``factor`` x the source size, plus a floor that is always kept
    free. An unknown size needs the floor only (ffmpeg's own write errors back it up)."""
    if source_size is None:
        return floor
    return floor + math.ceil(max(0, source_size) * factor)


def decline_delay(declined_here: int, *, base: float = RETRY_BACKOFF_BASE_SECONDS) -> int:
    """Seconds a job this worker had no room for stays invisible: 0 the first time
    (another worker may have room now), then backing off while it keeps coming back."""
    if declined_here <= 1:
        return 0
    return retry_backoff(declined_here - 1, base=base)


def may_take_work(
    free: int, *, floor: int, wanted: int, paused_for: float, cooldown: float
) -> bool:
    """Whether a worker that stopped for lack of room may receive again.

    Never while less than ``floor`` is free. Otherwise once ``wanted`` bytes are free
    (the room the failed or declined job needed), or after ``cooldown`` seconds: by then
    another worker had its chance at that job, and this one can serve smaller ones.
    """
    if free < floor:
        return False
    return free >= wanted or paused_for >= cooldown

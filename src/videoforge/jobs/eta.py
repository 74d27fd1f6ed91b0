"""How long a job has left, and where it stands in the queue: pure decisions.

Everything here takes plain values and returns plain values (table-tested in
milliseconds); :mod:`videoforge.jobs.estimates` reads them from the database.

- **Throughput** is measured, not assumed: recent completed jobs give the workers'
  encode speed (seconds of source per second of work) for each height band; a band
  without history falls back to all recent jobs, then to a conservative default.
- **A running job** starts from that prior (its duration over the speed for its
  height) and moves to its own pace as its progress rises: from half-way on, the ETA is
  what its elapsed time and progress say.
- **A queued job** waits for the work ahead of it (what the running jobs have left, plus
  the expected time of each job queued before it) shared by the workers' capacity
  (jobs running now: while anything waits, every worker is busy), then takes its own
  expected time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds of source per second of work before any job has been measured (a 1080p
#: ladder on a small machine is about this; measured figures replace it at once).
DEFAULT_SPEED = 0.5
#: Expected time of a job whose duration is not known yet (not probed).
DEFAULT_JOB_SECONDS = 60.0
#: Per job, beside the encode: download, probe, stills, upload.
OVERHEAD_SECONDS = 5.0
#: From this progress on, a running job's own pace is the whole estimate.
OWN_PACE_FROM = 0.5
_BANDS = (480, 720, 1080)


@dataclass(frozen=True)
class Done:
    """A finished job: how much source it had and how long its work took."""

    duration: float | None
    height: int | None
    seconds: float


@dataclass(frozen=True)
class Running:
    progress: int  # 0-100
    duration: float | None
    height: int | None
    elapsed: float  # seconds since it was claimed


@dataclass(frozen=True)
class Waiting:
    duration: float | None
    height: int | None


def _band(height: int | None) -> int:
    if height is None:
        return 1080
    return next((band for band in _BANDS if height <= band), 2160)


@dataclass(frozen=True)
class Throughput:
    """Measured encode speed per height band (seconds of source per second)."""

    by_band: dict[int, float]
    overall: float | None
    typical_job: float | None  # median seconds of a job, whatever its source

    @classmethod
    def measure(cls, done: Sequence[Done]) -> Throughput:
        speeds: dict[int, list[float]] = {}
        for job in done:
            if job.duration and job.seconds > 0:
                speed = job.duration / max(job.seconds - OVERHEAD_SECONDS, job.seconds / 2)
                speeds.setdefault(_band(job.height), []).append(speed)
        every = [s for values in speeds.values() for s in values]
        durations = [job.seconds for job in done if job.seconds > 0]
        return cls(
            by_band={band: statistics.median(values) for band, values in speeds.items()},
            overall=statistics.median(every) if every else None,
            typical_job=statistics.median(durations) if durations else None,
        )

    def speed(self, height: int | None) -> float:
        return self.by_band.get(_band(height)) or self.overall or DEFAULT_SPEED

    def expected(self, duration: float | None, height: int | None) -> float:
        """Seconds a job of this source takes from claim to completion."""
        if not duration:
            return self.typical_job or DEFAULT_JOB_SECONDS
        return duration / self.speed(height) + OVERHEAD_SECONDS


def remaining(job: Running, throughput: Throughput) -> float:
    """Seconds a running job has left."""
    prior = throughput.expected(job.duration, job.height)
    done = max(0.0, min(1.0, job.progress / 100))
    if done <= 0:
        return max(0.0, prior - job.elapsed)
    own = job.elapsed / done
    weight = min(1.0, done / OWN_PACE_FROM)
    return max(0.0, weight * own + (1 - weight) * prior - job.elapsed)


def queued_eta(
    own: Waiting,
    ahead: Sequence[Waiting],
    running: Sequence[Running],
    throughput: Throughput,
) -> float:
    """Seconds until a queued job is done: the work ahead over the capacity, then its own."""
    work_ahead = sum(remaining(job, throughput) for job in running) + sum(
        throughput.expected(job.duration, job.height) for job in ahead
    )
    capacity = max(1, len(running))
    return work_ahead / capacity + throughput.expected(own.duration, own.height)

"""Per-job temp directories: made fresh for every run, removed in a ``finally``, and the
leftovers of dead workers removed at start-up and by the sweep.

A directory is named ``job-{job_id}-{pid}-{random}`` (:func:`workdir_prefix`), so
a leftover is recognised as stale when its process is gone — or when it is older than
any job could run, which also covers a pid reused by an unrelated process.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import structlog

from videoforge.processor.metrics import STALE_WORKDIRS_REMOVED

log = structlog.get_logger("videoforge.processor.workdirs")

WORKDIR_PREFIX = "job-"
_WORKDIR_RE = re.compile(r"^job-(?P<job>[0-9a-f]{32})-(?P<pid>\d+)-")


@dataclass(frozen=True)
class WorkdirName:
    job_id: uuid.UUID
    pid: int


def workdir_prefix(job_id: uuid.UUID, pid: int | None = None) -> str:
    """Prefix of a job's temp dir: it names the job and the owning process so a sweep can
    tell a dead worker's leftovers from a live one's."""
    return f"{WORKDIR_PREFIX}{job_id.hex}-{os.getpid() if pid is None else pid}-"


def parse_workdir(path: Path) -> WorkdirName | None:
    """The job and pid encoded in a temp dir's name, or ``None`` if it is not one of ours."""
    match = _WORKDIR_RE.match(path.name)
    if match is None:
        return None
    return WorkdirName(job_id=uuid.UUID(hex=match["job"]), pid=int(match["pid"]))


def make_workdir(root: Path, job_id: uuid.UUID) -> Path:
    """A fresh private directory for one run of ``job_id`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=workdir_prefix(job_id), dir=root))


def remove_workdir(path: Path) -> None:
    """Remove a run's directory and everything in it (never raises)."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("workdir_not_removed", path=str(path))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_workdirs(
    root: Path,
    *,
    max_age_seconds: float,
    live_dirs: Container[Path] = (),
    own_pid_is_dead: bool = False,
    now: float | None = None,
) -> list[Path]:
    """Remove the temp dirs under ``root`` whose worker is dead (or that are older than
    ``max_age_seconds``); returns what was removed. Directories in ``live_dirs`` and
    anything not named like a job dir are left alone.

    ``own_pid_is_dead`` is for a worker starting up: it runs nothing yet, so a dir
    carrying its own pid was left by an earlier process that had the same pid.
    """
    if not root.is_dir():
        return []
    current = time.time() if now is None else now
    removed: list[Path] = []
    for entry in root.iterdir():
        name = parse_workdir(entry)
        if name is None or not entry.is_dir() or entry in live_dirs:
            continue
        try:
            age = current - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        dead = own_pid_is_dead if name.pid == os.getpid() else not pid_alive(name.pid)
        if dead or age > max_age_seconds:
            remove_workdir(entry)
            removed.append(entry)
            STALE_WORKDIRS_REMOVED.inc()
            log.info(
                "stale_workdir_removed",
                path=str(entry),
                job_id=str(name.job_id),
                pid=name.pid,
                age=round(age),
            )
    return removed

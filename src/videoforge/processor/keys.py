"""Deterministic storage keys and temp-dir names of the processor.

Outputs of a job live under ``outputs/{job_id}/`` and are named by the pipeline's
relative keys, so a retried job overwrites instead of duplicating. Imported originals go
under ``originals/`` (the gallery's namespace for sources; nothing here deletes there).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

OUTPUTS_ROOT = "outputs/"
ORIGINALS_ROOT = "originals/"
WORKDIR_PREFIX = "job-"
_WORKDIR_RE = re.compile(r"^job-(?P<job>[0-9a-f]{32})-(?P<pid>\d+)-")
_OUTPUT_PREFIX_RE = re.compile(r"^outputs/(?P<job>[0-9a-fA-F-]{32,36})/")


def output_prefix(job_id: uuid.UUID) -> str:
    """``outputs/{job_id}/`` — everything one job produced."""
    return f"{OUTPUTS_ROOT}{job_id}/"


def output_key(job_id: uuid.UUID, rel_key: str) -> str:
    """The full key of one of a job's outputs (``rel_key`` as the pipeline names it)."""
    rel = rel_key.lstrip("/")
    if not rel or ".." in rel.split("/"):
        raise ValueError(f"bad relative output key: {rel_key!r}")
    return output_prefix(job_id) + rel


def job_of_output_key(key: str) -> uuid.UUID | None:
    """The job id an ``outputs/{job_id}/...`` key belongs to, else ``None``."""
    match = _OUTPUT_PREFIX_RE.match(key)
    if match is None:
        return None
    try:
        return uuid.UUID(match["job"])
    except ValueError:
        return None


def import_key(user_id: str, video_id: uuid.UUID | None, job_id: uuid.UUID) -> str:
    """Where an original fetched from a URL is kept: ``originals/{user}/{video or job}/import``."""
    return f"{ORIGINALS_ROOT}{user_id}/{video_id or job_id}/import"


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

"""The job domain: shared by exactly the API Gateway (creates, reads, cancels, retries jobs)
and the Video Processor (claims and advances them).

- :mod:`.models` — the ``jobs`` and ``media_assets`` tables.
- :mod:`.transitions` — the one table of allowed status moves and the conditional update
  every change goes through.
- :mod:`.service` — the rules callers use (sessions passed in; only ``flush()``).
- :mod:`.schemas` — the wire format (``JobRead``, ``MediaAssetRead``, ``JobPage``).
"""

from __future__ import annotations

from videoforge.jobs.models import AssetType, Job, MediaAsset
from videoforge.jobs.schemas import JobPage, JobRead, MediaAssetRead
from videoforge.jobs.service import (
    create_job,
    enqueue,
    get_job,
    list_assets,
    list_jobs,
    request_cancel,
    retry_job,
)
from videoforge.jobs.transitions import ALLOWED_TRANSITIONS, InvalidTransition, can_move, transition

__all__ = [
    "ALLOWED_TRANSITIONS",
    "AssetType",
    "InvalidTransition",
    "Job",
    "JobPage",
    "JobRead",
    "MediaAsset",
    "MediaAssetRead",
    "can_move",
    "create_job",
    "enqueue",
    "get_job",
    "list_assets",
    "list_jobs",
    "request_cancel",
    "retry_job",
    "transition",
]

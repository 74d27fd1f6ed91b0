"""``videoforge sweep``: every service's clean-up in one pass.

The gallery sweeps what it owns (uploads that were never confirmed, stale multipart
uploads, storage deletes that failed and wait in its outbox); the processor sweeps its
own (stale temp dirs, outputs of jobs that no longer exist or failed, jobs stuck in
PENDING without a message). Neither reads the other's tables, and neither ever deletes
the original of a video.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from videoforge.settings import Settings

log = structlog.get_logger("videoforge.sweep")


async def sweep_all(settings: Settings) -> dict[str, Any]:
    from videoforge.gallery.deletions import sweep_deletions
    from videoforge.gallery.sweep import sweep_uploads
    from videoforge.infra.runtime import build_infra
    from videoforge.migrations import check_migrated
    from videoforge.processor.sweep import sweep as sweep_processing

    infra = await build_infra(settings)
    try:
        await check_migrated(infra.engine)
        uploads = await sweep_uploads(infra)
        deleted = await sweep_deletions(infra)
        processing = await sweep_processing(infra)
    finally:
        await infra.aclose()
    report = {"uploads_swept": uploads, "deletions_retried": deleted, "processing": processing}
    log.info("sweep_done", **{k: str(v) for k, v in report.items()})
    return report


def run(settings: Settings) -> dict[str, Any]:
    return asyncio.run(sweep_all(settings))

"""Processor counters (prometheus_client default registry; served by the ops metrics server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_FINISHED = Counter(
    "videoforge_processor_jobs_finished",
    "Jobs this worker brought to a final state, by state.",
    ["state"],
)
JOB_REQUEUES = Counter(
    "videoforge_processor_job_requeues",
    "Jobs put back to PENDING, by reason (transient, shutdown, reclaimed, local_resource).",
    ["reason"],
)
POISON_MESSAGES = Counter(
    "videoforge_processor_poison_messages",
    "Job-queue messages deleted because they could never be processed, by reason.",
    ["reason"],
)
DUPLICATE_MESSAGES = Counter(
    "videoforge_processor_duplicate_messages",
    "Job-queue messages for jobs already claimed or finished (deleted as no-ops).",
)
TRANSCODE_SECONDS = Histogram(
    "videoforge_processor_transcode_seconds",
    "Wall-clock seconds of the media pipeline per job.",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600, 7200),
)
STALE_WORKDIRS_REMOVED = Counter(
    "videoforge_processor_stale_workdirs_removed",
    "Temp dirs of dead workers removed at start or by the sweep.",
)
WORKER_DISK_OK = Gauge(
    "videoforge_worker_disk_ok",
    "1 while this worker has room in its work dir and takes jobs; 0 while it stopped "
    "taking jobs for lack of room (disk full, a job it had no room for).",
)
WORKER_DISK_FREE = Gauge(
    "videoforge_worker_disk_free_bytes",
    "Free bytes in this worker's work dir, at its last check.",
)
LOCAL_RESOURCE_FAILURES = Counter(
    "videoforge_processor_local_resource_failures",
    "Job attempts handed back because this machine could not do them (no_space, "
    "disk_quota, read_only_fs, file_too_large, io_error, declined: too little room).",
    ["reason"],
)

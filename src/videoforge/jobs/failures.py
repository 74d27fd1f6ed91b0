"""Which failed jobs a retry can help: a pure decision on the job's ``error_code``.

The processor fails a job permanently (no automatic retries) when the media or the URL
is at fault — its ``MediaRejected`` and ``FetchRejected`` codes, stored as the job's
``error_code``. Running such a job again reads the same bytes or the same link and
fails the same way, so neither the web client nor ``POST /api/jobs/{id}/retry`` offers
it. Everything else (``gave_up`` after transient trouble, ``worker_lost``, a
cancellation, a code this list does not know) may pass, so it stays retryable.

``tests/processor/test_failure_codes.py`` checks that every code the processor raises
is listed here.
"""

from __future__ import annotations

from videoforge.messages import JobStatus

#: The media itself (``processor.probe``, ``processor.ffmpeg``, ``processor.pipeline``).
MEDIA_REJECTED_CODES = frozenset(
    {
        "corrupt_media",
        "duration_too_long",
        "empty_file",
        "file_too_large",
        "frame_rate_too_high",
        "no_video_stream",
        "not_a_video",
        "output_too_large",
        "resolution_too_large",
        "timeout",  # ffmpeg's own deadline: the same file takes as long again
        "too_many_streams",
        "unsupported_format",
    }
)
#: The import link (``processor.fetch``): refused by the URL rules or by its server.
FETCH_REJECTED_CODES = frozenset(
    {
        "bad_encoding",
        "bad_port",
        "bad_scheme",
        "bad_url",
        "blocked_address",
        "empty",
        "http_error",
        "too_large",
        "too_many_redirects",
        "userinfo",
    }
)
PERMANENT_ERROR_CODES = MEDIA_REJECTED_CODES | FETCH_REJECTED_CODES


def is_permanent_failure(error_code: str | None) -> bool:
    """Whether a job that failed with ``error_code`` would fail the same way again."""
    return error_code is not None and error_code in PERMANENT_ERROR_CODES


def is_retryable(status: JobStatus, error_code: str | None) -> bool:
    """Whether running the job again can succeed: failed for a passing reason, or
    cancelled."""
    if status is JobStatus.CANCELLED:
        return True
    return status is JobStatus.FAILED and not is_permanent_failure(error_code)

"""Every code the processor fails a job with for good is one the job domain knows as
permanent (so no retry is offered for it), read from the processor's own source."""

from __future__ import annotations

import re
from pathlib import Path

from videoforge.jobs.failures import PERMANENT_ERROR_CODES, is_retryable
from videoforge.messages import JobStatus
from videoforge.processor import probe

SOURCES = [
    *Path(probe.__file__).parent.glob("*.py"),
    Path(probe.__file__).parents[1] / "infra" / "safe_http.py",
]
RAISED = re.compile(r"\b(?:MediaRejected|FetchRejected)\(\s*\"([a-z_]+)\"", re.MULTILINE)
DEFAULTS = re.compile(r"classify_stderr\([^)]*default=\"([a-z_]+)\"")


def test_every_permanent_code_the_processor_raises_is_known() -> None:
    raised = set()
    for path in SOURCES:
        text = path.read_text()
        raised |= set(RAISED.findall(text)) | set(DEFAULTS.findall(text))
    raised |= {code for _, code, _ in probe._STDERR_CODES}
    assert {"corrupt_media", "unsupported_format", "blocked_address"} <= raised  # the scan works
    assert raised - PERMANENT_ERROR_CODES == set()


def test_retryable_decisions() -> None:
    assert not is_retryable(JobStatus.FAILED, "corrupt_media")
    assert not is_retryable(JobStatus.FAILED, "not_a_video")
    assert is_retryable(JobStatus.FAILED, "gave_up")
    assert is_retryable(JobStatus.FAILED, None)
    assert is_retryable(JobStatus.CANCELLED, "cancelled")
    assert not is_retryable(JobStatus.PROCESSING, None)
    assert not is_retryable(JobStatus.COMPLETED, None)

"""Both OpenAPI documents, fuzzed by schemathesis against a real ``videoforge serve``.

Every operation of the gateway's and the gallery's documents gets generated requests,
anonymous and signed in: none may answer 5xx, and every status must be one the
document lists for that operation (a route that returns 401 must say so). Bounded by
examples per operation, so the whole run takes a minute or two.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, status_code_conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("VIDEOFORGE_FUZZ_EXAMPLES", "50"))
# Live progress streams stay open by design: a request to one never "completes".
STREAMING = r"/events$"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh embedded server, and a signed-in user's headers."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    env = {
        **os.environ,
        "VIDEOFORGE_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MAX_CONCURRENT_JOBS": "1",
        # Fuzzing is thousands of requests from one address: limits would answer most.
        "RATE_LIMITS": "off",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("DATABASE_URL", "DB_HOST", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "REDIS_URL"):
        env.pop(name, None)
    log = (data_dir / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "videoforge", "serve"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / "serve.log").read_text()[-3000:])
            time.sleep(0.2)
        signup = httpx.post(
            f"{base}/api/auth/signup",
            json={
                "email": "fuzz@example.com",
                "password": "a long and unusual pass phrase 7431",
                "display_name": "Fuzzer",
            },
        )
        assert signup.status_code == 201, signup.text
        token = signup.json()["access_token"]
        yield {"base": base, "auth": {"Authorization": f"Bearer {token}"}, "log": data_dir}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_FUZZ = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,
    database=None,
)


def _fuzz(schema: schemathesis.BaseSchema, base: str, headers: dict[str, str]) -> list[str]:
    """Every operation's generated cases; what failed, one line each (first per operation).

    Driven directly rather than through schemathesis' pytest plugin: the schema only
    exists once the server a fixture starts is up.
    """
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes wrongly
            raise result.err()
        operation = result.ok()

        @given(case=operation.as_strategy())
        @_FUZZ
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=base, headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        try:
            run()
        except FailureGroup as group:  # failed checks: report them with the others
            for failure in group.exceptions:
                failures.append(f"{operation.label}: {failure}".replace("\n", " | ")[:400])
    return failures


@pytest.mark.parametrize("document", ["/api/openapi.json", "/api/gallery/openapi.json"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_every_operation_answers_as_documented_and_never_5xx(
    platform: dict[str, Any], document: str, signed_in: bool
) -> None:
    schema = schemathesis.openapi.from_url(f"{platform['base']}{document}")
    headers = platform["auth"] if signed_in else {}
    failures = _fuzz(schema.exclude(path_regex=STREAMING), platform["base"], headers)
    assert not failures, "\n".join(failures)


def test_the_server_logged_no_unhandled_error(platform: dict[str, Any]) -> None:
    """Runs after the fuzzing in this module (pytest keeps file order)."""
    text = Path(platform["log"], "serve.log").read_text(errors="replace")
    assert "unhandled_error" not in text
    assert "Traceback" not in text

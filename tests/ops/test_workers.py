"""``videoforge gallery|gateway --workers N``: N processes through an app factory, with
the gallery's once-only loops run by exactly one of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import psutil
import pytest

from videoforge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({"VIDEOFORGE_ENV": "test", "LOG_FORMAT": "json", **extra})
    env["VIDEOFORGE_DATA_DIR"] = str(tmp_path / "data")
    return env


T = TypeVar("T")


def _wait(predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result: T | Literal[False] | None
        try:
            result = predicate()
        except (httpx.HTTPError, psutil.Error):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _servers(pid: int) -> list[psutil.Process]:
    """uvicorn's worker processes (multiprocessing's resource tracker is not one)."""
    return [
        p for p in psutil.Process(pid).children() if "resource_tracker" not in " ".join(p.cmdline())
    ]


def _settled(log: Path) -> set[int]:
    """The processes that froze their start-up heap (:mod:`videoforge.infra.heap`)."""
    return {
        json.loads(line)["pid"]
        for line in log.read_text(errors="replace").splitlines()
        if '"heap_settled"' in line
    }


def _leaders(log: Path) -> list[int]:
    pids = []
    for line in log.read_text(errors="replace").splitlines():
        if '"background_leader"' in line:
            pids.append(json.loads(line)["pid"])
    return pids


@pytest.fixture
def gallery(
    tmp_path: Path, postgres_url: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = _free_port()
    log = tmp_path / "gallery.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "videoforge", "gallery", "--workers", "2", "--port", str(port)],
        env=_env(tmp_path, DATABASE_URL=postgres_url),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}", log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_gallery_serves_from_n_processes_and_runs_its_loops_once(
    gallery: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, url, log = gallery
    _wait(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 60, "health")
    workers = _wait(
        lambda: (c := _servers(proc.pid)) and len(c) == 2 and c,
        30,
        "two worker processes",
    )
    for _ in range(20):
        assert httpx.get(f"{url}/api/gallery/videos", timeout=5).status_code == 200
    # Each serving process froze what its start-up left, before its first request.
    assert _settled(log) >= {w.pid for w in workers}
    leaders = _wait(lambda: _leaders(log), 20, "a leader for the background loops")
    time.sleep(2 * 2.5)  # more than one poll interval: nobody else may take it
    assert _leaders(log) == leaders
    assert len(leaders) == 1
    assert leaders[0] in {w.pid for w in workers}

    # The leader dies: uvicorn replaces it, and one of the live processes takes over.
    os.kill(leaders[0], signal.SIGKILL)
    now = _wait(lambda: len(_leaders(log)) == 2 and _leaders(log), 30, "a new leader")
    assert now[1] != leaders[0]
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def test_gateway_takes_a_worker_count_too(tmp_path: Path, postgres_url: str) -> None:
    port = _free_port()
    log = tmp_path / "gateway.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "videoforge", "gateway", "--port", str(port)],
        env=_env(
            tmp_path,
            DATABASE_URL=postgres_url,
            WEB_CONCURRENCY="2",
            GALLERY_URL="http://127.0.0.1:9",
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{url}/health", timeout=2).status_code in (200, 503), 60, "up")
        assert len(_servers(proc.pid)) == 2
        r = httpx.post(
            f"{url}/api/auth/signup",
            json={"email": "workers@example.com", "password": "many hands light work 8"},
        )
        assert r.status_code == 201, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0

"""Browser-test harness: the whole platform as a real ``videoforge serve`` process, a
real Debian Chromium driven by Playwright (never a downloaded browser), generated clips,
and a screenshots folder (``test-artifacts/screenshots``, gitignored)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.browser.pages import DESKTOP

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
STARTUP_TIMEOUT = 60.0
#: An init script that hides native HLS from the page, so the player takes hls.js (the
#: path of browsers without native HLS, such as Firefox).
FORCE_HLS_JS = """
(() => {
  const original = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? "" : original.call(this, type);
  };
})();
"""
_NOT_RUNNING = (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Platform:
    """A running ``videoforge serve``: its base URL and its log (shown when a test fails)."""

    def __init__(self, url: str, log_path: Path, data_dir: Path, pid: int) -> None:
        self.url = url
        self.log_path = log_path
        self.data_dir = data_dir
        self.pid = pid
        self.held: set[int] = set()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def hold_transcode(self, timeout: float = 60) -> int:
        """Wait for the platform's worker to start its next ladder ffmpeg and freeze it
        (SIGSTOP), so "the worker is busy transcoding" lasts as long as a test needs on
        a fast machine too. Cancelling the job still ends it: the worker's SIGTERM waits,
        its SIGKILL does not. Returns the ffmpeg's pid."""
        root = psutil.Process(self.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in root.children(recursive=True):
                if proc.pid in self.held:
                    continue
                try:
                    if proc.name() != "ffmpeg" or proc.status() in _NOT_RUNNING:
                        continue
                    if "-progress" not in proc.cmdline():
                        continue  # the stills run, not the ladder
                    proc.suspend()
                except psutil.NoSuchProcess:
                    continue
                self.held.add(proc.pid)
                return proc.pid
            time.sleep(0.01)
        raise AssertionError(f"no ladder ffmpeg started within {timeout}s:\n{self.log_tail()}")

    def release_held(self) -> None:
        """Let every frozen ffmpeg run on (those still alive)."""
        for pid in self.held:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).resume()
        self.held.clear()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The all-in-one platform on a free loopback port, with one worker process."""
    data_dir = tmp_path_factory.mktemp("vf-browser-data")
    log_path = data_dir / "serve.log"
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "VIDEOFORGE_DATA_DIR": str(data_dir),
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "MAX_CONCURRENT_JOBS": "1",
            "LOG_FORMAT": "json",
            # Small files go multipart too, so the browser tests exercise parts and resume.
            "UPLOAD_MULTIPART_THRESHOLD": str(6 * 1024 * 1024),
            "UPLOAD_PART_SIZE": str(5 * 1024 * 1024),
            # Every browser test signs its users up from 127.0.0.1: one address doing what
            # a crowd does. The limits themselves are tested in tests/gateway.
            "RATE_LIMITS": "signup=3600:2000:20,login=300:2000:200:200,"
            "upload_url=3600:2000:500,job_create=3600:2000:500,view=60:2000:600",
        }
    )
    for name in (
        "DATABASE_URL",
        "DB_HOST",
        "S3_BUCKET_NAME",
        "SQS_QUEUE_URL",
        "REDIS_URL",
        "COGNITO_USER_POOL_ID",
        "COGNITO_CLIENT_ID",
        "AWS_ENDPOINT_URL",
    ):
        env.pop(name, None)
    exe = Path(sys.executable).with_name("videoforge")
    cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m", "videoforge", "serve"]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    platform = Platform(url, log_path, data_dir, proc.pid)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"videoforge serve exited ({proc.returncode}):\n{platform.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"videoforge serve not healthy after {STARTUP_TIMEOUT}s:\n{platform.log_tail()}"
                )
            time.sleep(0.25)
        yield platform
    finally:
        platform.release_held()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Keep the server's log beside the screenshots: pytest's tmp dirs are rotated.
        if log_path.exists():
            SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_path, SCREENSHOTS.parent / "browser-serve.log")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright's sync API."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized browser profile for one test (20 s default timeout)."""
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def force_hls_js() -> str:
    """:data:`FORCE_HLS_JS` (test modules cannot import conftest in importlib mode)."""
    return FORCE_HLS_JS


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where pages are saved for people to look at (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def make_clip(path: Path, *, seconds: float = 2, size: str = "320x240", pad_bytes: int = 0) -> Path:
    """A real little video: ffmpeg's testsrc2 pattern and a sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is required"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    if pad_bytes:
        # A top-level MP4 'free' box: players skip it, so the clip stays a 2 s video while
        # the file becomes large enough for a multipart upload.
        with path.open("ab") as f:
            f.write((pad_bytes + 8).to_bytes(4, "big") + b"free")
            f.write(b"\0" * pad_bytes)
    return path


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vf-clips")


@pytest.fixture(scope="session")
def clip_factory() -> Callable[..., Path]:
    """``make_clip`` for tests (test modules cannot import conftest in importlib mode)."""
    return make_clip

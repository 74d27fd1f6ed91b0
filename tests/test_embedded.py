"""`videoforge serve`: the whole platform on one port, as a user runs it.

A real process on a free loopback port with a fresh data dir: it migrates on first
start, serves gateway and gallery on one port, processes an upload with its child
worker, shuts down cleanly on Ctrl-C (SIGINT) leaving no child behind, and after a
restart still has the account, the video and a job that was interrupted mid-run (which
it then completes).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import psutil
import pytest

from videoforge.gallery.playback import make_token
from videoforge.infra.secrets import storage_signing_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.settings import DEV_JWT_SECRET, load_settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Server:
    def __init__(
        self, data_dir: Path, port: int, log: Path, extra_env: dict[str, str | None] | None = None
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "VIDEOFORGE_DATA_DIR": str(data_dir),
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "MAX_CONCURRENT_JOBS": "1",
            "FFMPEG_THREADS": "1",
            "QUEUE_VISIBILITY_TIMEOUT": "5",
            "SHUTDOWN_GRACE_SECONDS": "0",
        }
        for name in ("DATABASE_URL", "DB_HOST", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "REDIS_URL"):
            env.pop(name, None)
        for name, value in (extra_env or {}).items():  # None: not set at all
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "videoforge", "serve"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait(self._healthy, 90, "serve to become healthy")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{self.log.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/health", timeout=2).status_code == 200

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _clip(path: Path, seconds: int, size: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _upload(client: httpx.Client, clip: Path, title: str) -> dict[str, Any]:
    ticket = client.post(
        "/api/upload/url",
        json={"filename": clip.name, "content_type": "video/mp4", "size": clip.stat().st_size},
    )
    assert ticket.status_code in (200, 201), ticket.text
    single = ticket.json()["single"]
    with clip.open("rb") as fh:
        sent = httpx.post(
            urljoin(str(client.base_url), single["url"]),
            data=single["fields"],
            files={"file": (clip.name, fh, "video/mp4")},
            timeout=60,
        )
    assert sent.status_code in (200, 201, 204), sent.text
    video = client.post(
        "/api/upload/confirm",
        json={"key": ticket.json()["key"], "title": title, "visibility": "public"},
    )
    assert video.status_code in (200, 201), video.text
    created: dict[str, Any] = video.json()
    return created


def test_serve_processes_shuts_down_cleanly_and_resumes_after_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    port = _free_port()
    server = Server(data, port, log)
    assert (data / "videoforge.db").exists()  # migrated on first start

    client = httpx.Client(base_url=server.url, timeout=30)
    signup = client.post(
        "/api/auth/signup", json={"email": "first@example.com", "password": "harbour lights 7"}
    )
    assert signup.status_code == 201, signup.text
    client.headers["Authorization"] = f"Bearer {signup.json()['access_token']}"

    # The web client is served on the same port as the APIs.
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]

    video = _upload(client, _clip(tmp_path / "short.mp4", 2, "320x240"), "first video")
    job = client.post("/api/jobs", json={"video_id": video["id"]})
    assert job.status_code == 201, job.text
    _wait(
        lambda: client.get(f"/api/gallery/videos/{video['id']}").json()["status"] == "ready",
        120,
        "the first video to be ready",
    )

    # A second, longer job is interrupted by Ctrl-C while it runs.
    # ~8 s of transcoding on one thread: the interrupt lands mid-run on a fast machine too.
    long_video = _upload(client, _clip(tmp_path / "long.mp4", 40, "640x360"), "interrupted")
    job2 = client.post("/api/jobs", json={"video_id": long_video["id"]}).json()["id"]
    _wait(
        lambda: client.get(f"/api/jobs/{job2}").json()["status"] in {"DOWNLOADING", "PROCESSING"},
        60,
        "job 2 to start",
        every=0.1,
    )
    children = _children_of(server.proc.pid)
    assert children, "serve should run its worker as a child process"
    assert server.interrupt() == 0
    time.sleep(0.5)
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), f"child {pid} outlived serve"

    # Restart on the same data dir: nothing was lost and the interrupted job completes.
    server = Server(data, port, log)
    try:
        login = httpx.post(
            f"{server.url}/api/auth/login",
            json={"email": "first@example.com", "password": "harbour lights 7"},
        )
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        listed = client.get("/api/gallery/videos").json()["items"]
        assert {v["id"] for v in listed} >= {video["id"]}
        stream = client.get(f"/api/gallery/stream/{video['id']}")
        assert stream.status_code == 200
        master = client.get(urljoin(server.url, stream.json()["hls"]))
        assert master.status_code == 200
        assert master.text.startswith("#EXTM3U")
        done = _wait(
            lambda: (
                (s := client.get(f"/api/jobs/{job2}").json())["status"] in {"COMPLETED", "FAILED"}
                and s
            ),
            180,
            "the interrupted job to finish after the restart",
        )
        assert done["status"] == "COMPLETED", done
        assert done["attempts"] == 2, done  # really interrupted, then run again
        _wait(
            lambda: (
                client.get(f"/api/gallery/videos/{long_video['id']}").json()["status"] == "ready"
            ),
            60,
            "the interrupted video to be ready",
        )
    finally:
        assert server.interrupt() == 0


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_killed_server_takes_its_workers_and_ffmpeg_along_and_one_restart_finishes(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    server = Server(data, _free_port(), log)
    client = httpx.Client(base_url=server.url, timeout=30)
    signup = client.post(
        "/api/auth/signup", json={"email": "killed@example.com", "password": "harbour lights 7"}
    )
    assert signup.status_code == 201, signup.text
    client.headers["Authorization"] = f"Bearer {signup.json()['access_token']}"
    video = _upload(client, _clip(tmp_path / "long.mp4", 40, "640x360"), "killed mid-job")
    job = client.post("/api/jobs", json={"video_id": video["id"]}).json()["id"]
    _wait(
        lambda: client.get(f"/api/jobs/{job}").json()["status"] == "PROCESSING",
        60,
        "the job to be transcoding",
        every=0.1,
    )

    def family_with_ffmpeg() -> list[psutil.Process] | None:
        family = [p for p in psutil.Process(server.proc.pid).children(recursive=True) if _alive(p)]
        return family if any("ffmpeg" in p.name() for p in family) else None

    running = _wait(
        family_with_ffmpeg,
        30,
        "the worker's ffmpeg to run",
        every=0.1,
    )

    # While the first set runs, a second server on the same data dir refuses to start.
    second = subprocess.run(
        [sys.executable, "-m", "videoforge", "serve"],
        env={**os.environ, "VIDEOFORGE_DATA_DIR": str(data), "PORT": str(_free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert "still running" in second.stderr, second.stderr[-2000:]

    # SIGKILL the server alone: the kernel takes the workers, and they their ffmpeg.
    server.proc.kill()
    server.proc.wait(timeout=10)
    _wait(
        lambda: not [p.pid for p in running if _alive(p)],
        15,
        "every worker and ffmpeg of the killed server to be gone",
    )

    # One restart on the same data dir finishes the job, once.
    server = Server(data, _free_port(), log)
    try:
        client.base_url = httpx.URL(server.url)
        done = _wait(
            lambda: (
                (s := client.get(f"/api/jobs/{job}").json())["status"] in {"COMPLETED", "FAILED"}
                and s
            ),
            240,
            "the job to finish after the restart",
        )
        assert done["status"] == "COMPLETED", done
        assert done["attempts"] == 2, done
        workers = [
            p
            for p in psutil.Process(server.proc.pid).children()
            if "worker" in " ".join(p.cmdline())
        ]
        assert len(workers) == 1  # one set of workers, not two
    finally:
        assert server.interrupt() == 0


def test_a_default_serve_keeps_its_secret_and_its_metrics_to_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``videoforge serve`` with nothing configured exposes: its own secret (0600), so
    the source's constants sign nothing; no /metrics on the public port, the platform's
    metrics on a loopback METRICS_PORT; the gallery's JSON under a CSP allowing nothing."""
    data = tmp_path / "data"
    monkeypatch.delenv("STORAGE_SIGNING_KEY", raising=False)  # signing below, as serve does
    metrics_port = _free_port()
    env: dict[str, str | None] = {"METRICS_PORT": str(metrics_port)}
    env |= dict.fromkeys(("JWT_SECRET", "METRICS_TOKEN", "STORAGE_SIGNING_KEY"))
    server = Server(data, _free_port(), tmp_path / "serve.log", env)
    try:
        secret = data / "server-secret"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert len(secret.read_bytes().strip()) >= 32

        with httpx.Client(base_url=server.url, timeout=30) as client:
            for path in ("/api/gallery/videos", "/api/gallery/nothing", "/storage/o/x"):
                r = client.get(path)
                assert "default-src 'none'" in r.headers["content-security-policy"], path
            r = client.get("/metrics")
            assert r.status_code == 404
            assert "videoforge_" not in r.text
            r = client.get("/metrics", headers={"Authorization": "Bearer anything-at-all-x"})
            assert r.status_code == 404

            # What anyone who read the source can sign is refused; what the install's own
            # secret signs is taken (so the refusals are about the key).
            own = load_settings(JWT_SECRET=secret.read_text().strip())
            published = load_settings(JWT_SECRET=DEV_JWT_SECRET)
            video = uuid.uuid4()
            expires = int(time.time()) + 600
            master = f"/api/gallery/stream/{video}/hls/master.m3u8"
            r = client.get(master, params={"token": make_token(published, video, expires)})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_token")
            r = client.get(master, params={"token": make_token(own, video, expires)})
            assert r.status_code == 404  # past the token: there is no such video
            for settings, status in ((published, 403), (own, 200)):
                store = LocalStorage(tmp_path / "signer", signing_key=storage_signing_key(settings))
                url = asyncio.run(
                    store.presign_put(
                        "outputs/x/thumbnail.jpg", expires_in=600, content_type="image/jpeg"
                    )
                )
                r = client.put(url, content=b"defaced", headers={"Content-Type": "image/jpeg"})
                assert r.status_code == status, r.text

        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert scraped.status_code == 200
        # Both halves of the platform, as served on the public port just now.
        assert 'service="gallery"' in scraped.text
        assert 'service="gateway"' in scraped.text
    finally:
        assert server.interrupt() == 0

"""The distributed setup, end to end, as real separate processes on loopback.

Gateway, gallery and two workers run as `videoforge gateway|gallery|worker` processes
against PostgreSQL, Redis and moto's S3/SQS server. The test walks the main data flow
(upload URL from the gallery → upload straight to storage → confirm → job through the
gateway → workers → gallery video `ready` → stream URLs → master playlist and a segment),
then SIGKILLs the worker that holds a job mid-run and shows the job still completes, and
finally stops every worker and shows that listing and streaming keep working.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urljoin

import boto3
import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

VISIBILITY = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become healthy in {timeout}s")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    gateway_url: str
    gallery_url: str
    env: dict[str, str]
    tmp: Path
    procs: dict[str, Proc] = field(default_factory=dict)

    def start(self, name: str, *args: str, **env: str) -> Proc:
        log = self.tmp / f"{name}.log"
        full = {**os.environ, **self.env, **env}
        full.pop("PYTEST_CURRENT_TEST", None)
        popen = subprocess.Popen(
            [sys.executable, "-m", "videoforge", *args],
            env=full,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()


def _make_clip(path: Path, seconds: int, size: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_url: str, redis_url: str, moto_endpoint: str, unique: str
) -> Iterator[Cluster]:
    from videoforge.infra.queue.sqs import ensure_sqs_queues

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    jobs_url, _ = asyncio.run(ensure_sqs_queues(sqs, f"jobs-{unique}", 5, VISIBILITY))
    events_url, _ = asyncio.run(ensure_sqs_queues(sqs, f"events-{unique}", 10, 30))
    bucket = f"vf-dist-{unique}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    gateway_port, gallery_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gallery_url = f"http://127.0.0.1:{gallery_port}"
    env = {
        "VIDEOFORGE_ENV": "test",
        "HOST": "127.0.0.1",
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        # Rate-limit counters of earlier runs on the shared Redis must not count here.
        "REDIS_KEY_PREFIX": f"vf-dist-{unique}:",
        "S3_BUCKET_NAME": bucket,
        "S3_PATH_STYLE": "true",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "SQS_QUEUE_URL": jobs_url,
        "SQS_EVENTS_QUEUE_URL": events_url,
        "QUEUE_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "GALLERY_URL": gallery_url,
        "GATEWAY_URL": gateway_url,
        "FFMPEG_THREADS": "1",
        "SHUTDOWN_GRACE_SECONDS": "0",
        "LOG_FORMAT": "json",
    }
    c = Cluster(gateway_url, gallery_url, env, tmp_path)
    # Each process has its own data dir: nothing is shared but the real backends.
    c.start("gateway", "gateway", PORT=str(gateway_port), VIDEOFORGE_DATA_DIR=str(tmp_path / "gw"))
    c.start("gallery", "gallery", PORT=str(gallery_port), VIDEOFORGE_DATA_DIR=str(tmp_path / "gl"))
    for n in (1, 2):
        c.start(
            f"worker{n}",
            "worker",
            VIDEOFORGE_DATA_DIR=str(tmp_path / f"w{n}"),
            TEMP_DIR=str(tmp_path / f"w{n}" / "tmp"),
            MAX_CONCURRENT_JOBS="1",
        )
    try:
        _wait_http(f"{gallery_url}/health", timeout=60)
        _wait_http(f"{gateway_url}/health", timeout=60)
        yield c
    finally:
        c.stop_all()


T = TypeVar("T")


def _wait_for(
    predicate: Callable[[], T | Literal[False] | None],
    timeout: float,
    what: str,
    every: float = 0.2,
) -> T:
    deadline = time.monotonic() + timeout
    last: T | Literal[False] | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _upload_and_confirm(
    client: httpx.Client, gallery: httpx.Client, clip: Path, title: str
) -> dict[str, Any]:
    size = clip.stat().st_size
    ticket = gallery.post(
        "/api/upload/url", json={"filename": clip.name, "content_type": "video/mp4", "size": size}
    )
    assert ticket.status_code in (200, 201), ticket.text
    single = ticket.json()["single"]
    assert single is not None
    # Straight to the object store: no service sees these bytes.
    with clip.open("rb") as fh:
        up = httpx.post(
            single["url"],
            data=single["fields"],
            files={"file": (clip.name, fh, "video/mp4")},
            timeout=60,
        )
    assert up.status_code in (200, 201, 204), up.text
    confirm = gallery.post(
        "/api/upload/confirm", json={"key": ticket.json()["key"], "title": title}
    )
    assert confirm.status_code in (200, 201), confirm.text
    video: dict[str, Any] = confirm.json()
    assert video["status"] == "uploaded"
    return video


def test_distributed_flow_survives_worker_kill_and_processor_outage(
    cluster: Cluster, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    _make_clip(clip, seconds=2, size="320x240")
    long_clip = tmp_path / "long.mp4"
    # Long enough to be caught mid-run on an idle machine (~4 s of transcoding).
    _make_clip(long_clip, seconds=40, size="640x360")

    gw = httpx.Client(base_url=cluster.gateway_url, timeout=30)
    signup = gw.post(
        "/api/auth/signup", json={"email": "dist@example.com", "password": "correct horse 1"}
    )
    assert signup.status_code == 201, signup.text
    token = signup.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    gw.headers.update(auth)
    # The gallery directly (it verifies the gateway's tokens through the gateway's JWKS).
    gallery = httpx.Client(base_url=cluster.gallery_url, timeout=30, headers=auth)

    # 1. upload → confirm → job → ready
    video = _upload_and_confirm(gw, gallery, clip, "distributed one")
    job = gw.post("/api/jobs", json={"video_id": video["id"]})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]

    def job_state() -> dict[str, Any]:
        r = gw.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200, r.text
        state: dict[str, Any] = r.json()
        return state

    done = _wait_for(
        lambda: (s := job_state())["status"] in {"COMPLETED", "FAILED"} and s, 120, "job 1"
    )
    assert done["status"] == "COMPLETED", done
    assert done["attempts"] == 1  # processed exactly once
    ready = _wait_for(
        lambda: (
            (v := gallery.get(f"/api/gallery/videos/{video['id']}").json())["status"] == "ready"
            and v
        ),
        60,
        "video ready",
    )
    assert ready["duration"] == pytest.approx(2.0, abs=0.3)
    assert ready["resolution"] == "320x240"
    claimed = [
        p.name for p in cluster.procs.values() if job_id in p.text() and "job_claimed" in p.text()
    ]
    assert len(claimed) == 1, f"job claimed by {claimed}"

    # 2. stream URLs → master playlist → variant → a segment, all through signed URLs
    stream = gw.get(f"/api/gallery/stream/{video['id']}")  # via the gateway's proxy
    assert stream.status_code == 200, stream.text
    urls = stream.json()
    master_url = urljoin(cluster.gateway_url, urls["hls"])
    master = httpx.get(master_url, timeout=30)
    assert master.status_code == 200
    assert master.text.startswith("#EXTM3U")
    variant_uri = next(ln for ln in master.text.splitlines() if ln and not ln.startswith("#"))
    variant = httpx.get(urljoin(master_url, variant_uri), timeout=30)
    assert variant.status_code == 200, variant.text
    segment_uri = next(ln for ln in variant.text.splitlines() if ln and not ln.startswith("#"))
    segment = httpx.get(urljoin(str(variant.url), segment_uri), timeout=30)
    assert segment.status_code == 200
    assert len(segment.content) > 0

    # 3. SIGKILL the worker holding a job mid-run; the other completes it.
    video2 = _upload_and_confirm(gw, gallery, long_clip, "distributed two")
    job2 = gw.post("/api/jobs", json={"video_id": video2["id"]}).json()["id"]

    def holder() -> Proc | None:
        state = gw.get(f"/api/jobs/{job2}").json()
        if state["status"] not in {"DOWNLOADING", "PROCESSING"}:
            return None
        for proc in cluster.procs.values():
            if proc.name.startswith("worker") and re.search(
                rf"{job2}.*job_claimed|job_claimed.*{job2}", proc.text()
            ):
                return proc
        return None

    victim = _wait_for(holder, 60, "a worker to claim job 2", every=0.1)
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait(timeout=10)
    done2 = _wait_for(
        lambda: (
            (s := gw.get(f"/api/jobs/{job2}").json())["status"] in {"COMPLETED", "FAILED"} and s
        ),
        180,
        "job 2 after the kill",
    )
    assert done2["status"] == "COMPLETED", done2
    assert done2["attempts"] == 2
    survivor = next(
        p for p in cluster.procs.values() if p.name.startswith("worker") and p is not victim
    )
    assert job2 in survivor.text()
    _wait_for(
        lambda: gallery.get(f"/api/gallery/videos/{video2['id']}").json()["status"] == "ready",
        60,
        "video 2 ready",
    )

    # 4. The processor is down entirely: listing and streaming keep working.
    survivor.popen.send_signal(signal.SIGTERM)
    assert survivor.popen.wait(timeout=30) == 0
    listing = gw.get("/api/gallery/videos", params={"owner": "me"})
    assert listing.status_code == 200
    assert {v["id"] for v in listing.json()["items"]} >= {video["id"], video2["id"]}
    stream2 = gw.get(f"/api/gallery/stream/{video2['id']}")
    assert stream2.status_code == 200
    mp4 = httpx.get(
        urljoin(cluster.gateway_url, stream2.json()["renditions"][0]["url"]), timeout=30
    )
    assert mp4.status_code == 200
    assert mp4.content[4:8] == b"ftyp"

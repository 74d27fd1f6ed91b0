"""Benchmark: confirm -> first playable segment and confirm -> COMPLETED, end to end.

Starts ``videoforge serve`` (embedded: SQLite, the local object store, the database
queue, one worker) on a temporary data dir, then for each clip length: generates a
1080p30 H.264 clip with a sine tone (testsrc2, libx264 ``veryfast``, 2 s GOP), signs a
user up, uploads the clip through the API as the web client does (presigned form POST,
or parts for a large file), confirms it and creates its job at once (the web client
does both in a row). From the confirm's answer it measures:

first playable   the stream endpoint answers (the video is still processing or ready),
                 its master playlist names a variant, that variant lists a segment, and
                 the segment's signed URL returns bytes: what a player needs to start;
completed        the video is ``ready``.

Both figures are printed side by side per clip, with when the worker's log says it
claimed the job, had the source, had the first segments stored and completed. The
goal of issue 15: first playable <= 10 s after confirm for a 1080p upload of any length.

Usage::

    .venv/bin/python bench/latency.py                       # 20 s and 60 s of 1080p
    .venv/bin/python bench/latency.py --seconds 20,60,120 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

import httpx

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "latency bench pass phrase 9051"  # noqa: S105 - a throwaway local account
POLL = 0.1  # seconds between looks


def make_clip(path: Path, seconds: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
         "-b:v", "5M", "-maxrate", "6M", "-bufsize", "10M",
         "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        check=True, timeout=600,
    )  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``videoforge serve`` on a fresh data dir and a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AWS_"))}
        for name in ("DATABASE_URL", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "REDIS_URL"):
            env.pop(name, None)
        env.update(
            {
                "VIDEOFORGE_DATA_DIR": str(root / "data"),
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "MAX_CONCURRENT_JOBS": "1",
                "LOG_FORMAT": "json",
                "RATE_LIMITS": "signup=3600:2000:200,upload_url=3600:2000:500,"
                "job_create=3600:2000:500",
            }
        )
        exe = Path(sys.executable).with_name("videoforge")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(exe), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"videoforge serve did not start; see {self.log}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


#: What the worker logs on the way, in order (``job_playable``: the lowest rung and the
#: audio are stored and the event that says so is being written).
MILESTONES = ("job_claimed", "source_downloaded", "job_playable", "job_completed")


def milestones(log: Path, job_id: str, confirmed_at: float) -> dict[str, float]:
    """Seconds from the confirm to each of the job's :data:`MILESTONES` in the server's
    JSON log."""
    found: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        if job_id not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        name = record.get("event")
        if record.get("job_id") == job_id and name in MILESTONES and name not in found:
            at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            found[name] = at.timestamp() - confirmed_at
    return found


def upload(http: httpx.Client, base: str, clip: Path) -> tuple[str, str, float]:
    """Upload, confirm and start the job; returns (video id, job id, wall-clock time of
    the confirm's answer)."""
    data = clip.read_bytes()
    ticket = http.post(
        "/api/upload/url",
        json={"filename": clip.name, "content_type": "video/mp4", "size": len(data)},
    )
    ticket.raise_for_status()
    key, single, multipart = (ticket.json()[k] for k in ("key", "single", "multipart"))
    if single:
        httpx.post(
            urljoin(base + "/", single["url"]),
            data=single["fields"],
            files={"file": (clip.name, data, "video/mp4")},
            timeout=120,
        ).raise_for_status()
    else:
        size, parts = multipart["part_size"], []
        for part in multipart["parts"]:
            n = part["part_number"]
            put = httpx.put(
                urljoin(base + "/", part["url"]), content=data[(n - 1) * size : n * size],
                timeout=120,
            )  # fmt: skip
            put.raise_for_status()
            parts.append({"part_number": n, "etag": put.headers["ETag"]})
        http.post(
            "/api/upload/multipart/complete",
            json={"key": key, "upload_id": multipart["upload_id"], "parts": parts},
        ).raise_for_status()
    confirmed = http.post(
        "/api/upload/confirm", json={"key": key, "title": clip.stem, "visibility": "public"}
    )
    confirmed.raise_for_status()
    at = time.time()
    video_id = confirmed.json()["id"]
    job = http.post("/api/jobs", json={"video_id": video_id})
    job.raise_for_status()
    return video_id, str(job.json()["id"]), at


def plays_a_segment(http: httpx.Client, video_id: str) -> bool:
    """The stream answers and its first variant's first segment can be fetched."""
    stream = http.get(f"/api/gallery/stream/{video_id}")
    if stream.status_code != 200:
        return False
    hls = stream.json()["hls"]
    master = http.get(hls)
    if master.status_code != 200:
        return False
    variant_uri = next((x for x in master.text.splitlines() if x and not x.startswith("#")), None)
    if variant_uri is None:
        return False
    variant_url = urljoin(hls, variant_uri)
    variant = http.get(variant_url)
    segment = next((x for x in variant.text.splitlines() if x and not x.startswith("#")), None)
    if variant.status_code != 200 or segment is None:
        return False
    got = http.get(urljoin(variant_url, segment))
    return got.status_code == 200 and len(got.content) > 0


def measure(server: Server, clip: Path) -> dict[str, float]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        signup = http.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
        signup.raise_for_status()
        http.headers["Authorization"] = f"Bearer {signup.json()['access_token']}"
        video_id, job_id, confirmed = upload(http, server.url, clip)
        first: float | None = None
        deadline = confirmed + 1800
        while time.time() < deadline:
            if first is None and plays_a_segment(http, video_id):
                first = time.time() - confirmed
            video = http.get(f"/api/gallery/videos/{video_id}").json()
            if video["status"] == "failed":
                raise SystemExit(f"the job failed: {video.get('failure_reason')}")
            if video["status"] == "ready":
                done = time.time() - confirmed
                if first is None:  # ready between two looks: it plays now
                    assert plays_a_segment(http, video_id)
                    first = done
                return {"first": first, "completed": done} | milestones(
                    server.log, job_id, confirmed
                )
            time.sleep(POLL)
    raise SystemExit("the video did not become ready in 30 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", default="20,60", help="clip lengths, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    lengths = [int(x) for x in args.seconds.split(",")]
    root = Path(tempfile.mkdtemp(prefix="vf-latency-"))
    try:
        clips = {n: make_clip(root / f"clip-{n}s.mp4", n) for n in lengths}
        server = Server(root)
        try:
            results: dict[int, list[dict[str, float]]] = {n: [] for n in lengths}
            for round_ in range(args.rounds):
                for n in lengths:
                    got = measure(server, clips[n])
                    results[n].append(got)
                    steps = "  ".join(
                        f"{name} {got[name]:.1f}" for name in MILESTONES if name in got
                    )
                    print(
                        f"round {round_ + 1}: {n:>4} s 1080p  first playable {got['first']:6.1f} s"
                        f"   completed {got['completed']:6.1f} s   (worker log: {steps})",
                        flush=True,
                    )
        finally:
            server.stop()
        print()
        print(
            f"{'clip':>12} | {'confirm -> first playable':>26} | "
            f"{'confirm -> COMPLETED':>21} | ratio"
        )
        for n in lengths:
            first = statistics.median(r["first"] for r in results[n])
            done = statistics.median(r["completed"] for r in results[n])
            size = clips[n].stat().st_size / 1e6
            print(
                f"{n:>4} s {size:4.0f}MB | {first:24.1f} s | {done:19.1f} s | {first / done:5.2f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

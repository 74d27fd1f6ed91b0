"""Soak: the distributed setup under mixed load while Redis, PostgreSQL and a worker fail.

Everything runs on loopback and is started (and stopped) here: a private PostgreSQL
(initdb + pg_ctl), a private Redis, moto's S3/SQS server, then ``videoforge gateway``,
``gallery`` and two ``worker`` processes, each with its own data dir. Virtual users
(each its own account and, through ``X-Forwarded-For`` from the trusted loopback proxy
address, its own client address) send a mix through the gateway for ``--seconds``:
listing, search, video detail, stream URLs, view posts, and now and then an upload
(straight to S3) with its job.

Faults, spread over the run:

1. Redis is stopped for ``--outage`` seconds and started again **empty** (no
   persistence): rate-limit counters, view dedup windows and any view buffered only in
   Redis are gone.
2. PostgreSQL is stopped for ``--outage`` seconds and started again.
3. A worker in the middle of a job (its ffmpeg running) is SIGKILLed, and started again
   a little later; that job must still complete, once.

It prints, for the calm before, each fault and the time after it: requests/s, p50 and
p99 latency, and responses by status; then how long the errors took to stop after each
fault; then jobs submitted / completed / completed more than once, and views answered
``counted: true`` against the views the gallery has stored. The run passes when the
errors stop after every fault, every job completes exactly once (the killed worker's
too) and the stored views are exactly the counted ones (a view post that got no answer
at all may have been stored: those are allowed on top, and reported).

Usage::

    .venv/bin/python bench/soak.py                   # 150 s, 8 virtual users
    .venv/bin/python bench/soak.py --seconds 300 --users 16 --outage 8
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil

PASSWORD = "soak test pass phrase 4412"  # noqa: S105 - a throwaway local account
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise SystemExit(f"PostgreSQL's {name} is not installed")
    return str(candidates[-1])


# ------------------------------------------------------------------ backends
class Postgres:
    """A private PostgreSQL that can be stopped and started."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.dir.mkdir()
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -h 127.0.0.1 -c max_connections=200"
        log = str(self.dir / "log")
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-l", log, "-o", opts, "start")
        wait_port(self.port)

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


class Redis:
    """A private Redis without persistence: a restart starts empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "videoforge", *self.argv],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------- load
@dataclass
class Sample:
    at: float
    action: str
    status: int  # 0: no response (connection refused, timeout)
    seconds: float


@dataclass
class Stats:
    samples: list[Sample] = field(default_factory=list)
    #: Each job created during the soak, with the headers of the user who owns it.
    jobs: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    views_sent: int = 0
    views_counted: collections.Counter[str] = field(default_factory=collections.Counter)
    #: View posts that got no response at all (they may or may not have been stored).
    views_unanswered: int = 0


class User:
    def __init__(self, gateway: str, index: int, stats: Stats) -> None:
        self.ip = f"198.18.{index // 250}.{index % 250 + 1}"
        self.client = httpx.AsyncClient(
            base_url=gateway, timeout=15, headers={"X-Forwarded-For": self.ip}
        )
        self.email = f"soak-{index}-{uuid.uuid4().hex[:6]}@example.com"
        self.stats = stats

    async def call(self, action: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = await self.client.request(method, url, **kw)
        except httpx.HTTPError:
            self.stats.samples.append(Sample(time.time(), action, 0, time.monotonic() - start))
            return None
        self.stats.samples.append(
            Sample(time.time(), action, response.status_code, time.monotonic() - start)
        )
        return response

    async def sign_up(self) -> None:
        r = await self.client.post(
            "/api/auth/signup", json={"email": self.email, "password": PASSWORD}
        )
        r.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"


async def upload_and_process(user: User, clip: bytes) -> None:
    ticket = await user.call(
        "upload_url",
        "POST",
        "/api/upload/url",
        json={"filename": "soak.mp4", "content_type": "video/mp4", "size": len(clip)},
    )
    if ticket is None or ticket.status_code != 201:
        return
    single = ticket.json()["single"]
    try:
        async with httpx.AsyncClient(timeout=30) as s3:
            sent = await s3.post(
                single["url"], data=single["fields"], files={"file": ("soak.mp4", clip)}
            )
    except httpx.HTTPError:
        return
    if sent.status_code not in (200, 201, 204):
        return
    video = await user.call(
        "confirm",
        "POST",
        "/api/upload/confirm",
        json={
            "key": ticket.json()["key"],
            "title": f"soak {uuid.uuid4().hex[:6]}",
            "visibility": "public",
        },
    )
    if video is None or video.status_code not in (200, 201):
        return
    video_id = video.json()["id"]
    key = str(uuid.uuid4())
    # Retried with the same idempotency key until the gateway answers: never two jobs.
    for _ in range(30):
        job = await user.call(
            "job_create",
            "POST",
            "/api/jobs",
            json={"video_id": video_id},
            headers={"Idempotency-Key": key},
        )
        if job is not None and job.status_code in (200, 201):
            user.stats.jobs.append((job.json()["id"], dict(user.client.headers)))
            return
        await asyncio.sleep(1)


async def run_user(
    user: User, videos: list[str], stop: float, clip: bytes, rng: random.Random
) -> None:
    while time.time() < stop:
        roll = rng.random()
        video = rng.choice(videos)
        if roll < 0.30:
            await user.call("list", "GET", "/api/gallery/videos")
        elif roll < 0.40:
            await user.call("search", "GET", "/api/gallery/videos", params={"q": "soak"})
        elif roll < 0.60:
            await user.call("detail", "GET", f"/api/gallery/videos/{video}")
        elif roll < 0.75:
            await user.call("stream", "GET", f"/api/gallery/stream/{video}")
        elif roll < 0.97:
            r = await user.call("view", "POST", f"/api/gallery/videos/{video}/views")
            user.stats.views_sent += 1
            if r is None:
                user.stats.views_unanswered += 1
            elif r.status_code == 202 and r.json().get("counted"):
                user.stats.views_counted[video] += 1
        else:
            await upload_and_process(user, clip)
        await asyncio.sleep(rng.uniform(0.01, 0.05))


# ------------------------------------------------------------------- report
def summarize(name: str, samples: list[Sample], seconds: float) -> str:
    if not samples:
        return f"{name:<22} no requests"
    latencies = sorted(s.seconds * 1000 for s in samples if s.status)
    statuses = collections.Counter(s.status for s in samples)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0
    errors = {k: v for k, v in sorted(statuses.items()) if k == 0 or k >= 500}
    return (
        f"{name:<22} {len(samples) / max(seconds, 0.001):7.1f} req/s  p50 {p50:6.1f} ms  "
        f"p99 {p99:7.1f} ms  statuses {dict(sorted(statuses.items()))}  errors {errors or 0}"
    )


def is_error(sample: Sample) -> bool:
    return sample.status == 0 or sample.status >= 500


def recovery_seconds(samples: list[Sample], fault_end: float, horizon: float) -> float | None:
    """Seconds from the fault's end to the last error before a clean stretch (None: never)."""
    errors = [s.at for s in samples if fault_end <= s.at < horizon and is_error(s)]
    if not errors:
        return 0.0
    last = max(errors)
    return None if horizon - last < 3 else last - fault_end


def logged_jobs(log: Path, event: str) -> list[str]:
    """The ``job_id`` of each of ``log``'s JSON lines about ``event``, in order."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if f'"{event}"' in line:
            with contextlib.suppress(ValueError):
                found.append(json.loads(line).get("job_id", "?"))
    return found


def completions(logs: list[Path]) -> collections.Counter[str]:
    return collections.Counter(job for log in logs for job in logged_jobs(log, "job_completed"))


def transcoding(worker: Service) -> bool:
    """Whether ``worker`` is in the middle of a job: an ffmpeg of its own is running."""
    if worker.proc is None or worker.proc.poll() is not None:
        return False
    try:
        children = psutil.Process(worker.proc.pid).children(recursive=True)
        return any(child.name() == "ffmpeg" for child in children)
    except psutil.NoSuchProcess:
        return False


async def busy_worker(workers: list[Service]) -> Service:
    """The first worker seen transcoding (wrap in ``asyncio.timeout``)."""
    while True:
        for worker in workers:
            if transcoding(worker):
                return worker
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------- main
@dataclass
class Cluster:
    root: Path
    pg: Postgres
    redis: Redis
    moto: Any
    gateway: str = ""
    services: list[Service] = field(default_factory=list)
    workers: list[Service] = field(default_factory=list)
    clip: bytes = b""

    @classmethod
    def start(cls, args: argparse.Namespace, root: Path) -> Cluster:
        from moto.server import ThreadedMotoServer

        from videoforge import migrations
        from videoforge.infra.queue.sqs import ensure_sqs_queues

        moto_port = free_port()
        cluster = cls(root, Postgres(root), Redis(), ThreadedMotoServer(
            ip_address="127.0.0.1", port=moto_port, verbose=False))  # fmt: skip
        cluster.pg.start()
        cluster.redis.start()
        cluster.moto.start()
        moto_url = f"http://127.0.0.1:{moto_port}"
        db_url = cluster.pg.url.replace("postgresql://", "postgresql+asyncpg://")
        migrations.upgrade(db_url)
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "soak")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "soak")
        sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
        jobs_url, _ = asyncio.run(ensure_sqs_queues(sqs, "soak-jobs", 5, args.visibility))
        events_url, _ = asyncio.run(ensure_sqs_queues(sqs, "soak-events", 10, 30))
        boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(
            Bucket="soak"
        )
        gateway_port, gallery_port = free_port(), free_port()
        cluster.gateway = f"http://127.0.0.1:{gateway_port}"
        gallery = f"http://127.0.0.1:{gallery_port}"
        env = {
            **os.environ,
            "VIDEOFORGE_ENV": "test",
            "HOST": "127.0.0.1",
            "DATABASE_URL": db_url,
            "REDIS_URL": cluster.redis.url,
            "S3_BUCKET_NAME": "soak",
            "S3_PATH_STYLE": "true",
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_REGION": "us-east-1",
            "SQS_QUEUE_URL": jobs_url,
            "SQS_EVENTS_QUEUE_URL": events_url,
            "QUEUE_VISIBILITY_TIMEOUT": str(args.visibility),
            "GALLERY_URL": gallery,
            "GATEWAY_URL": cluster.gateway,
            "FFMPEG_THREADS": "1",
            "SHUTDOWN_GRACE_SECONDS": "0",
            "LOG_FORMAT": "json",
            # The virtual users' addresses arrive as X-Forwarded-For from loopback.
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            # Gateway and gallery each have a data dir of their own: they share a secret.
            "JWT_SECRET": uuid.uuid4().hex * 2,
        }
        cluster.services = [
            Service("gateway", ["gateway"], {**env, "PORT": str(gateway_port),
                    "VIDEOFORGE_DATA_DIR": str(root / "gw")}, root / "gateway.log"),
            Service("gallery", ["gallery"], {**env, "PORT": str(gallery_port),
                    "VIDEOFORGE_DATA_DIR": str(root / "gl")}, root / "gallery.log"),
        ]  # fmt: skip
        cluster.workers = [
            Service(f"worker{n}", ["worker"], {**env, "VIDEOFORGE_DATA_DIR": str(root / f"w{n}"),
                    "MAX_CONCURRENT_JOBS": "1"}, root / f"worker{n}.log")
            for n in (1, 2)
        ]  # fmt: skip
        cluster.services += cluster.workers
        for service in cluster.services:
            service.start()
        for url in (gallery, cluster.gateway):
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not become healthy")
                time.sleep(0.2)
        clip_path = root / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=size=160x120:rate=15:duration=2", "-f", "lavfi", "-i",
             "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip_path)],
            check=True,
        )  # fmt: skip
        cluster.clip = clip_path.read_bytes()
        return cluster

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            self.pg.stop()
        self.moto.stop()


async def soak(args: argparse.Namespace, cluster: Cluster) -> int:
    pg, redis, gateway, clip = cluster.pg, cluster.redis, cluster.gateway, cluster.clip
    workers = cluster.workers
    stats = Stats()
    users = [User(gateway, i, stats) for i in range(args.users)]
    for user in users:
        await user.sign_up()
    # A few ready videos to watch.
    for user in users[:3]:
        await upload_and_process(user, clip)
    seeded = list(stats.jobs)
    videos: list[str] = []
    owners: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=gateway) as c:
        while len(videos) < len(seeded) and time.monotonic() < deadline:
            states = [((await c.get(f"/api/jobs/{j}", headers=h)).json(), h) for j, h in seeded]
            owners = {s["video_id"]: h for s, h in states if s.get("status") == "COMPLETED"}
            videos = list(owners)
            await asyncio.sleep(1)
    if not videos:
        raise SystemExit("no video became ready before the soak")
    # Seeding's jobs and views are not part of the counts.
    stats.jobs.clear()
    stats.samples.clear()

    start = time.time()
    stop = start + args.seconds
    rng = random.Random(7)
    load = [
        asyncio.create_task(run_user(u, videos, stop, clip, random.Random(rng.random())))
        for u in users
    ]
    faults: list[tuple[str, float, float]] = []

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, start + args.seconds * fraction - time.time()))

    await at(0.2)
    began = time.time()
    await asyncio.to_thread(redis.stop)
    await asyncio.sleep(args.outage)
    await asyncio.to_thread(redis.start)
    faults.append(("redis restart (empty)", began, time.time()))

    await at(0.45)
    began = time.time()
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(args.outage)
    await asyncio.to_thread(pg.start)
    faults.append(("postgres restart", began, time.time()))

    await at(0.7)
    # Mid-job, or the kill would prove nothing about jobs.
    victim: Service | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            victim = await busy_worker(workers)
    killed_job = None
    if victim is not None:
        began = time.time()
        assert victim.proc is not None
        victim.proc.kill()
        victim.proc.wait()
        claimed = logged_jobs(victim.log, "job_claimed")
        killed_job = claimed[-1] if claimed else None
        await asyncio.sleep(args.outage)
        victim.start()
        faults.append(("worker SIGKILL", began, time.time()))

    await asyncio.gather(*load)
    end = time.time()

    # Drain: every job to a final state, every counted view flushed.
    pending = dict(stats.jobs)
    final: dict[str, str] = {}
    drain = time.monotonic() + args.drain
    async with httpx.AsyncClient(base_url=gateway) as c:
        while pending and time.monotonic() < drain:
            for job, headers in list(pending.items()):
                r = await c.get(f"/api/jobs/{job}", headers=headers)
                if r.status_code == 200 and r.json()["status"] in FINAL:
                    final[job] = r.json()["status"]
                    del pending[job]
            await asyncio.sleep(1)
        await asyncio.sleep(args.flush_wait)
        stored = {}
        for video in videos:
            r = await c.get(f"/api/gallery/videos/{video}", headers=owners[video])
            r.raise_for_status()
            stored[video] = r.json()["views"]
        killed = None
        if killed_job is not None:
            headers = next((h for j, h in stats.jobs if j == killed_job), {})
            r = await c.get(f"/api/jobs/{killed_job}", headers=headers)
            killed = r.json() if r.status_code == 200 else None
    for user in users:
        await user.client.aclose()

    # ---------------------------------------------------------------- report
    samples = stats.samples
    print(f"soak: {args.seconds} s, {args.users} users, outages of {args.outage} s")
    edges = [("before faults", start, faults[0][1])]
    for i, (name, f_start, f_end) in enumerate(faults):
        edges.append((f"during {name}", f_start, f_end))
        nxt = faults[i + 1][1] if i + 1 < len(faults) else end
        edges.append((f"after {name}", f_end, nxt))
    for name, a, b in edges:
        print(summarize(name, [s for s in samples if a <= s.at < b], b - a))
    ok = True
    for i, (name, _, f_end) in enumerate(faults):
        horizon = faults[i + 1][1] if i + 1 < len(faults) else end
        rec = recovery_seconds(samples, f_end, horizon)
        ok &= rec is not None
        shown = "errors never stopped" if rec is None else f"errors stopped {rec:.1f} s after"
        print(f"recovery  {name:<22} {shown}")
    done = completions([w.log for w in workers])
    if victim is None:
        ok = False
        print("killed    no worker was transcoding within 30 s: the worker fault did not run")
    elif killed is None:
        ok = False
        print(f"killed    {victim.name} mid-job, but its job ({killed_job}) was not found")
    else:
        once = killed["status"] == "COMPLETED" and done.get(killed_job or "", 0) == 1
        ok &= once
        print(
            f"killed    {victim.name} mid-job {killed_job}: {killed['status']} after "
            f"{killed['attempts']} attempts, completed {done.get(killed_job or '', 0)} time(s)"
        )
    by_status = collections.Counter(final.values())
    duplicated = sum(1 for job, _ in stats.jobs if done.get(job, 0) > 1)
    print(
        f"jobs      submitted {len(stats.jobs)}  completed {by_status['COMPLETED']}  "
        f"failed {by_status['FAILED']}  unfinished {len(stats.jobs) - len(final)}  "
        f"completed more than once {duplicated}"
    )
    counted = sum(stats.views_counted.values())
    total = sum(stored.values())  # the seeded videos had no views before the soak
    unanswered = stats.views_unanswered
    print(
        f"views     sent {stats.views_sent}  answered counted {counted}  stored {total}  "
        f"lost {max(0, counted - total)}  unanswered {unanswered}  "
        f"stored beyond the counted {max(0, total - counted)}"
    )
    views_exact = counted <= total <= counted + unanswered
    ok &= by_status["COMPLETED"] == len(stats.jobs) and duplicated == 0 and views_exact
    print("result    " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=150)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds each fault lasts")
    parser.add_argument("--visibility", type=int, default=6, help="QUEUE_VISIBILITY_TIMEOUT")
    parser.add_argument("--drain", type=float, default=180, help="seconds to wait for jobs")
    parser.add_argument("--flush-wait", type=float, default=15, help="seconds for views")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vf-soak-"))
    if os.geteuid() == 0:  # the private PostgreSQL runs as postgres, inside this directory
        os.chmod(root, 0o755)  # noqa: S103 - a temporary directory of this run only
    cluster = None
    try:
        cluster = Cluster.start(args, root)
        code = asyncio.run(soak(args, cluster))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

"""One account driven over the HTTP API, as another client of the platform would: the
browser tests' way to sign up, upload and wait beside what the page does, and to make
an account an admin as an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

#: Every browser test account's password (strong enough for the sign-up rules).
PASSWORD = "correct horse battery staple"


def grant_admin(platform: Any, email: str) -> None:
    """`videoforge users grant-admin` on the platform's data directory (what an operator
    does); the account's next log-in carries the admin group."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DB_HOST", "REDIS_URL", "COGNITO_USER_POOL_ID"}
    }
    env["VIDEOFORGE_DATA_DIR"] = str(platform.data_dir)
    exe = Path(sys.executable).with_name("videoforge")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "videoforge"]
    done = subprocess.run(
        [*cmd, "users", "grant-admin", email], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


class ApiUser:
    """One account driven over the HTTP API (as another client of the platform would)."""

    def __init__(self, base: str, email: str, *, display_name: str | None = None) -> None:
        self.base = base
        self.email = email
        self.http = httpx.Client(base_url=base, timeout=30)
        body = {"email": email, "password": PASSWORD}
        if display_name is not None:
            body["display_name"] = display_name
        resp = self.http.post("/api/auth/signup", json=body)
        assert resp.status_code == 201, resp.text
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        self.id = str(resp.json()["user"]["id"])

    def close(self) -> None:
        self.http.close()

    def upload(
        self,
        clip: Path,
        *,
        title: str,
        description: str = "",
        visibility: str = "public",
        content_type: str = "video/mp4",
    ) -> dict[str, Any]:
        """Upload ``clip`` through a presigned form (or in parts), confirm it as a video
        of that ``visibility`` and start processing; returns the job."""
        data = clip.read_bytes()
        ticket = self.http.post(
            "/api/upload/url",
            json={"filename": clip.name, "content_type": content_type, "size": len(data)},
        )
        assert ticket.is_success, ticket.text
        key = ticket.json()["key"]
        single, multipart = ticket.json()["single"], ticket.json()["multipart"]
        if single:
            stored = httpx.post(
                urljoin(self.base + "/", single["url"]),
                data=single["fields"],
                files={"file": (clip.name, data, content_type)},
                timeout=30,
            )
            assert stored.is_success, stored.text
        else:
            size = multipart["part_size"]
            parts = []
            for part in multipart["parts"]:
                n = part["part_number"]
                chunk = data[(n - 1) * size : n * size]
                put = httpx.put(urljoin(self.base + "/", part["url"]), content=chunk, timeout=30)
                assert put.is_success, put.text
                parts.append({"part_number": n, "etag": put.headers["ETag"]})
            done = self.http.post(
                "/api/upload/multipart/complete",
                json={"key": key, "upload_id": multipart["upload_id"], "parts": parts},
            )
            assert done.is_success, done.text
        body = {"key": key, "title": title, "visibility": visibility}
        if description:
            body["description"] = description
        video = self.http.post("/api/upload/confirm", json=body)
        assert video.is_success, video.text
        job = self.http.post("/api/jobs", json={"video_id": video.json()["id"]})
        assert job.is_success, job.text
        return dict(job.json())

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/api/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def job_of(self, video_id: str, timeout: float = 30) -> dict[str, Any]:
        """The newest job of one of this user's videos (the page starts it right after
        the upload is confirmed, so it may take a moment to exist)."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http.get("/api/jobs", params={"limit": 100})
            assert resp.status_code == 200, resp.text
            jobs = [j for j in resp.json()["items"] if j.get("video_id") == video_id]
            if jobs:
                return dict(jobs[0])
            assert time.monotonic() < deadline, f"no job for video {video_id}"
            time.sleep(0.1)

    def wait_job(self, job_id: str, statuses: set[str], timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"job {job_id} stayed {job['status']}"
            time.sleep(0.25)

    def upload_ready(self, clip: Path, *, title: str, **options: str) -> str:
        """:meth:`upload`, then wait until the video is ready; returns its id."""
        video_id = str(self.upload(clip, title=title, **options)["video_id"])
        self.wait_video(video_id, "ready", timeout=180)
        return video_id

    def wait_video(self, video_id: str, status: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http.get(f"/api/gallery/videos/{video_id}")
            assert resp.status_code == 200, resp.text
            if resp.json()["status"] == status:
                return dict(resp.json())
            assert resp.json()["status"] != "failed", resp.json()
            assert time.monotonic() < deadline, f"video {video_id} is {resp.json()['status']}"
            time.sleep(0.5)

"""``videoforge serve``: the whole platform on one machine, nothing else to install.

One HTTP port serves both the gateway and the gallery (requests are dispatched by
path); the gallery's background loops (job events, view flushing) and a periodic sweep
run in this process; ``MAX_CONCURRENT_JOBS`` worker processes run as supervised
children. Everything lives in ``VIDEOFORGE_DATA_DIR`` (SQLite, objects, keys, temp).

Restarting loses nothing: uploads are files in the data dir, jobs in flight come back
through the database queue after their visibility timeout and stale temp dirs are
swept by the workers at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from videoforge.infra import heap
from videoforge.infra.process import die_with_parent
from videoforge.paths import is_gallery_path
from videoforge.settings import Settings

log = structlog.get_logger("videoforge.embedded")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SWEEP_INTERVAL_SECONDS = 15 * 60
WORKER_RESTART_DELAY_SECONDS = 2.0


@dataclass
class WorkerSupervisor:
    """Keeps ``count`` ``videoforge worker`` child processes alive until stopped."""

    settings: Settings
    count: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: The data dir's lock (:class:`DataDirLock`): every worker holds it too.
    lock_fd: int | None = None
    _stopping: bool = False

    def child_env(self) -> dict[str, str]:
        """The environment of each worker child: one slot each, no metrics port, and with
        a single worker no chunked encoding unless ``CHUNK_MIN_SECONDS`` says so (parts
        would all wait for the one worker, and a chunked video plays only once it is
        stitched, while one encoded whole plays from its first segments)."""
        env = dict(os.environ)
        env["VIDEOFORGE_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["MAX_CONCURRENT_JOBS"] = "1"
        # Children would all bind the same port; the parent's /metrics covers the platform.
        env.pop("METRICS_PORT", None)
        if self.count == 1 and "chunk_min_seconds" not in self.settings.model_fields_set:
            env["CHUNK_MIN_SECONDS"] = "0"
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = self.child_env()
        return subprocess.Popen(
            # Killed by the kernel when this process dies, even by SIGKILL or the OOM
            # killer: no worker (and so no ffmpeg, which dies with its worker) runs on
            # unsupervised. Its job comes back through the queue's visibility timeout.
            die_with_parent([sys.executable, "-m", "videoforge", "worker"]),
            env=env,
            # Own process group: a terminal's Ctrl-C reaches us, and we decide how workers stop.
            start_new_session=True,
            # Inherited: while any worker of this server lives, no second server starts.
            pass_fds=(self.lock_fd,) if self.lock_fd is not None else (),
        )

    async def run(self, stop: asyncio.Event) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        log.info("workers_started", count=self.count, pids=[p.pid for p in self.procs])
        while not stop.is_set():
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not stop.is_set():
                    log.warning("worker_exited", pid=proc.pid, code=proc.returncode)
                    await asyncio.sleep(WORKER_RESTART_DELAY_SECONDS)
                    self.procs[i] = self._spawn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def stop(self) -> None:
        """SIGTERM every worker (they finish or requeue their job), then wait; kill stragglers."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = self.settings.shutdown_grace_seconds + 10
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, deadline)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        log.info("workers_stopped")


class DataDirLocked(RuntimeError):
    """Another ``videoforge serve`` (or one of its workers) still runs on this data dir."""


class DataDirLock:
    """An exclusive ``flock`` on ``serve.lock`` in the data dir, for the server's life.

    The lock belongs to the open file, which the workers inherit: it is released only
    when the server *and* every worker it started have exited, so a restart can never
    add a second set of workers beside a first that is still alive.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self.fd: int | None = None

    def acquire(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLocked(
                f"another videoforge serve (pid {holder}) or one of its workers is still "
                f"running on {self.path.parent}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def build_app(
    settings: Settings, *, lock_fd: int | None = None, settle_heap: bool = False
) -> ASGIApp:
    """The one-port ASGI app: gallery paths to the gallery, the rest to the gateway.

    ``settle_heap`` (for ``serve``, not for tests): :func:`videoforge.infra.heap.settle`
    once the start-up has finished."""
    from videoforge import migrations
    from videoforge.gallery import api as gallery_api
    from videoforge.gallery.app import create_app as create_gallery
    from videoforge.gallery.lifecycle.delivery import run_lifecycle_delivery
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.gallery.client import GalleryClient
    from videoforge.infra.runtime import build_infra

    state: dict[str, Any] = {}

    async def startup() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(migrations.upgrade, settings.database_url)
        infra = await build_infra(settings, with_signing_key=True)
        own_url = f"http://{_connect_host(settings.host)}:{settings.port}"
        import httpx

        http = httpx.AsyncClient(base_url=own_url, timeout=30)
        state["http"] = http
        state["gallery"] = create_gallery(settings, infra)
        state["gateway"] = create_gateway(
            settings, infra, gallery_client=GalleryClient(own_url, http)
        )
        state["infra"] = infra
        if settings.metrics_port is not None:
            state["metrics"] = _start_metrics(settings, state["gallery"], state["gateway"])
        stop = asyncio.Event()
        state["stop"] = stop
        supervisor = WorkerSupervisor(settings, settings.max_concurrent_jobs, lock_fd=lock_fd)
        state["supervisor"] = supervisor
        state["tasks"] = [
            asyncio.create_task(gallery_api.run_event_consumer(infra, stop), name="events"),
            asyncio.create_task(gallery_api.run_view_flusher(infra, stop), name="views"),
            asyncio.create_task(run_lifecycle_delivery(infra, stop), name="lifecycle-events"),
            asyncio.create_task(_periodic_sweep(settings, stop), name="sweep"),
            asyncio.create_task(supervisor.run(stop), name="workers"),
        ]
        log.info("serving", url=f"http://{_connect_host(settings.host)}:{settings.port}/")

    async def shutdown() -> None:
        stop: asyncio.Event = state["stop"]
        stop.set()
        await state["supervisor"].stop()
        tasks: list[asyncio.Task[None]] = state["tasks"]
        await asyncio.wait(tasks, timeout=15)
        for task in tasks:
            task.cancel()
        await gallery_api.flush_views(state["infra"])
        await state["http"].aclose()
        if "metrics" in state:
            state["metrics"].close()
        await state["infra"].aclose()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await startup()
                    except Exception as exc:
                        log.exception("startup_failed")
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    if settle_heap:
                        heap.settle()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    try:
                        await shutdown()
                    finally:
                        await send({"type": "lifespan.shutdown.complete"})
                    return
        target: ASGIApp = (
            state["gallery"] if is_gallery_path(scope.get("path", "")) else state["gateway"]
        )
        await target(scope, receive, send)

    return app


def _start_metrics(settings: Settings, *apps: Any) -> Any:
    """``/metrics`` for the whole platform on its own listener (``METRICS_HOST``, loopback
    by default): the public port answers it only with ``METRICS_TOKEN``."""
    from videoforge.infra import metrics
    from videoforge.infra.http import app_collectors

    for app in apps:
        for name, fn in app_collectors(app).items():
            metrics.register_collector(name, fn)
    assert settings.metrics_port is not None
    return metrics.start_metrics_server(settings.metrics_port, addr=settings.metrics_host)


async def _periodic_sweep(settings: Settings, stop: asyncio.Event) -> None:
    from videoforge.sweep import sweep_all

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SWEEP_INTERVAL_SECONDS)
        if stop.is_set():
            return
        try:
            await sweep_all(settings)
        except Exception:
            log.exception("sweep_failed")


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host


def serve(settings: Settings) -> None:
    """Run the all-in-one platform until Ctrl-C / SIGTERM."""
    import uvicorn

    from videoforge.infra import tracing
    from videoforge.infra.logging import configure_logging

    configure_logging(settings, service="embedded")
    tracing.configure("embedded")
    lock = DataDirLock(settings.data_dir)
    try:
        lock_fd = lock.acquire()
    except DataDirLocked as exc:
        raise SystemExit(f"error: {exc}") from None
    url = f"http://{_connect_host(settings.host)}:{settings.port}/"
    print(f"VideoForge is starting at {url}  (data in {settings.data_dir.resolve()})", flush=True)
    if not settings.smtp_host:
        # The operator's only way to hand someone a password-reset link without mail.
        print(
            f"No SMTP_HOST: account mail (password resets, confirmations) is written to "
            f"{settings.mail_dir.resolve()}",
            flush=True,
        )
    try:
        uvicorn.run(
            build_app(settings, lock_fd=lock_fd, settle_heap=True),
            host=settings.host,
            port=settings.port,
            lifespan="on",
            log_config=None,
            # Forwarding headers: the apps' ForwardedHeadersMiddleware (FORWARDED_ALLOW_IPS).
            proxy_headers=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        )
    finally:
        lock.release()

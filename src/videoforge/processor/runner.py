"""The one way the processor runs ffmpeg and ffprobe: :func:`run_tool` runs an argv from
:func:`~videoforge.processor.ffmpeg.build_argv` as a list (never a shell) in the job's
directory, with a wall-clock timeout, an output size cap, cancellation (terminate, then
kill), a watch on stderr for failures of the machine, and a bounded stderr tail for the
error message. No code path leaves a child process behind: whatever ends the wait -
timeout, cancel event, ``asyncio`` task cancellation, an exception - ends ffmpeg too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from videoforge.infra import tracing
from videoforge.infra.process import die_with_parent
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.ffmpeg import MediaRejected, PipelineCancelled
from videoforge.processor.resources import LocalResourceError, machine_failure, verify


@dataclass
class RunResult:
    """What a finished ffmpeg/ffprobe run left behind."""

    returncode: int
    stdout: bytes
    stderr_tail: str
    elapsed: float


@dataclass
class _Tail:
    """Keeps the last ``limit`` bytes of a stream."""

    limit: int
    data: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace").strip()


@dataclass
class _MachineWatch:
    """Scans every complete stderr line (not only the kept tail) for a failure of the
    machine; remembers the first one."""

    reason: str | None = None
    line: str = ""
    partial: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> None:
        if self.reason is not None:
            return
        self.partial += chunk
        *lines, rest = bytes(self.partial).split(b"\n")
        # A line longer than this is not one of ffmpeg's messages; keep its end only.
        self.partial = bytearray(rest[-4096:])
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            reason = machine_failure(text)
            if reason is not None:
                self.reason, self.line = reason, text.strip()[:500]
                return


ProgressTime = Callable[[float], Awaitable[None]]
# Hook for tests: every argv that reaches the OS goes through here first.
_spawn_observers: list[Callable[[list[str]], None]] = []


def observe_spawns(observer: Callable[[list[str]], None]) -> Callable[[], None]:
    """Register ``observer`` to see every argv spawned; returns the function that removes it."""
    _spawn_observers.append(observer)
    return lambda: _spawn_observers.remove(observer)


def directory_size(root: Path) -> int:
    """Total bytes of the regular files under ``root``."""
    total = 0
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def launch_argv(argv: list[str]) -> list[str]:
    """``argv`` behind ``setpriv --pdeathsig KILL``: a dead worker (even SIGKILLed or
    OOM-killed) leaves no ffmpeg burning CPU until its time limit. Without ``setpriv``
    the tool runs as is, and the next worker's stale-workdir sweep is the only clean-up."""
    return die_with_parent(argv)


async def run_tool(
    argv: list[str],
    *,
    cwd: Path,
    time_limit: float,
    config: ProcessingConfig,
    cancel: asyncio.Event | None = None,
    on_progress_time: ProgressTime | None = None,
    watch_dir: Path | None = None,
    max_output_bytes: int | None = None,
    max_stdout_bytes: int = 32 * 1024 * 1024,
) -> RunResult:
    """:func:`_run_tool` in a trace span named after the tool, with its wall time and
    exit status (the ladder's ffmpeg, the probe's ffprobe, the stills' ffmpeg...)."""
    started = time.monotonic()
    with tracing.span(Path(argv[0]).name, **{"process.command_args.count": len(argv)}) as span:
        try:
            result = await _run_tool(
                argv,
                cwd=cwd,
                time_limit=time_limit,
                config=config,
                cancel=cancel,
                on_progress_time=on_progress_time,
                watch_dir=watch_dir,
                max_output_bytes=max_output_bytes,
                max_stdout_bytes=max_stdout_bytes,
            )
        finally:
            # Also for a run stopped by a limit, a cancel or a full disk.
            span.set_attribute("videoforge.wall_seconds", round(time.monotonic() - started, 3))
        span.set_attribute("process.exit.code", result.returncode)
        return result


async def _run_tool(
    argv: list[str],
    *,
    cwd: Path,
    time_limit: float,
    config: ProcessingConfig,
    cancel: asyncio.Event | None = None,
    on_progress_time: ProgressTime | None = None,
    watch_dir: Path | None = None,
    max_output_bytes: int | None = None,
    max_stdout_bytes: int = 32 * 1024 * 1024,
) -> RunResult:
    """Run one command built by :func:`build_argv` and wait for it, within limits.

    Raises :class:`MediaRejected` (``timeout``, ``output_too_large``),
    :class:`PipelineCancelled`, or :class:`LocalResourceError` as soon as a stderr line
    says the machine failed (disk full...), whatever the exit code would have been; any
    other non-zero exit is returned, not raised, so the caller can classify it. With
    ``on_progress_time`` the ``-progress`` stream on stdout is parsed and the output
    position (seconds) is reported.
    """
    for observer in list(_spawn_observers):
        observer(list(argv))
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *launch_argv(argv),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(cwd),
        # Its own process group: a Ctrl-C on the worker's terminal is ours to handle,
        # and we stop ffmpeg deliberately (terminate, then kill).
        start_new_session=True,
    )
    stderr_tail = _Tail(config.stderr_tail_bytes)
    machine = _MachineWatch()
    machine_failed = asyncio.Event()
    stdout_buf = bytearray()

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr_tail.feed(chunk)
            machine.feed(chunk)
            if machine.reason is not None:
                machine_failed.set()
        machine.feed(b"\n")  # the last line, if it had no newline
        if machine.reason is not None:
            machine_failed.set()

    async def read_stdout() -> None:
        assert proc.stdout is not None
        if on_progress_time is None:
            while chunk := await proc.stdout.read(65536):
                if len(stdout_buf) + len(chunk) > max_stdout_bytes:
                    raise MediaRejected("corrupt_media", "The media description is too large.")
                stdout_buf.extend(chunk)
            return
        while line := await proc.stdout.readline():
            key, _, value = line.decode("ascii", "replace").strip().partition("=")
            # out_time_us is microseconds; out_time_ms is too (an old ffmpeg misnomer).
            if key in ("out_time_us", "out_time_ms") and value.lstrip("-").isdigit():
                await on_progress_time(max(0, int(value)) / 1_000_000)

    readers = [asyncio.create_task(read_stderr()), asyncio.create_task(read_stdout())]
    waiter = asyncio.create_task(proc.wait())
    cancel_waiter = asyncio.create_task(cancel.wait()) if cancel is not None else None
    machine_waiter = asyncio.create_task(machine_failed.wait())
    deadline = started + time_limit
    last_size_check = 0.0
    try:
        while True:
            if machine.reason is not None:
                # Stop at once: whatever ffmpeg still writes is lost, and its exit code
                # (0 when a tee slave fails softly) must not decide anything. Looked at
                # before ffmpeg stops: its outputs still fill the disk now.
                raise LocalResourceError(
                    machine.reason,
                    f"{Path(argv[0]).name} could not write: {machine.line}",
                    verified=await asyncio.to_thread(verify, machine.reason, cwd),
                )
            for reader in readers:
                if reader.done() and reader.exception() is not None:
                    raise reader.exception()  # type: ignore[misc]
            if cancel_waiter is not None and cancel_waiter.done():
                raise PipelineCancelled("processing was cancelled")
            if waiter.done() and all(r.done() for r in readers):
                break
            # Only unfinished tasks: a finished one would make wait() return at once, forever.
            pending = {
                t
                for t in (waiter, *readers, cancel_waiter, machine_waiter)
                if t is not None and not t.done()
            }
            await asyncio.wait(pending, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            if any(t.done() for t in pending):
                continue  # look at what finished before the clock and the size
            if time.monotonic() > deadline:
                raise MediaRejected(
                    "timeout", f"Processing took longer than the {time_limit:g} s limit."
                )
            if (
                watch_dir is not None
                and max_output_bytes is not None
                and time.monotonic() - last_size_check >= 1.0
            ):
                # A long video has thousands of segments: walk them off the event loop.
                last_size_check = time.monotonic()
                if await asyncio.to_thread(directory_size, watch_dir) <= max_output_bytes:
                    continue
                raise MediaRejected(
                    "output_too_large",
                    f"The outputs grew beyond the {max_output_bytes} byte limit.",
                )
    finally:
        await _stop(proc, config.kill_grace)
        for task in (*readers, waiter, cancel_waiter, machine_waiter):
            if task is not None and not task.done():
                task.cancel()
        for task in (*readers, waiter, cancel_waiter, machine_waiter):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    returncode = proc.returncode if proc.returncode is not None else -1
    if returncode == -signal.SIGXFSZ:
        # Killed for writing past RLIMIT_FSIZE: a limit of this machine, not the media.
        raise LocalResourceError(
            "file_too_large", f"{Path(argv[0]).name} exceeded the file size limit (SIGXFSZ)"
        )
    return RunResult(
        returncode=returncode,
        stdout=bytes(stdout_buf),
        stderr_tail=stderr_tail.text(),
        elapsed=time.monotonic() - started,
    )


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Make sure ``proc`` has exited: SIGTERM, ``grace`` seconds, then SIGKILL."""
    if proc.returncode is not None:
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    except asyncio.CancelledError:
        # Cancelled while stopping: kill outright; the child must not outlive us.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise

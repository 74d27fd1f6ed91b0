"""An ffmpeg never outlives its worker: killed with SIGKILL (no chance to clean up), the
worker's ffmpeg is killed by the kernel too (``PR_SET_PDEATHSIG`` through ``setpriv``)
instead of burning CPU as an orphan until its time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from videoforge.processor import runner

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from videoforge.processor.config import ProcessingConfig
    from videoforge.processor.runner import run_tool

    argv = ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=duration=600:rate=5",
            "-f", "null", "-"]
    asyncio.run(run_tool(argv, cwd=Path(sys.argv[1]), time_limit=600,
                         config=ProcessingConfig()))
    """
)


def _alive(pid: int) -> bool:
    """Running, or stopped: anything but gone or a zombie waiting to be reaped."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def test_the_launcher_sets_a_parent_death_signal() -> None:
    launched = runner.launch_argv(["ffmpeg", "-version"])
    assert launched[-2:] == ["ffmpeg", "-version"]
    assert launched[:4] == [launched[0], "--pdeathsig", "KILL", "--"]
    assert Path(launched[0]).name == "setpriv"


def test_ffmpeg_dies_with_a_sigkilled_worker(tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)])
    child = None
    try:
        deadline = time.monotonic() + 30
        while child is None:
            assert worker.poll() is None, "the worker exited early"
            assert time.monotonic() < deadline, "ffmpeg did not start"
            children = psutil.Process(worker.pid).children()
            child = next((p.pid for p in children if p.name() == "ffmpeg"), None)
            time.sleep(0.05)
        time.sleep(0.5)  # ffmpeg (not setpriv) is running: the signal was armed before exec
        assert _alive(child)

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "ffmpeg outlived its SIGKILLed worker"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)

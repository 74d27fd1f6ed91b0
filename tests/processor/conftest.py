"""A size-capped directory for disk-full tests: a real tmpfs when this process may mount
one (root), otherwise ``RLIMIT_FSIZE`` on the ffmpeg children that write under it (the
stand-in: ffmpeg then dies of SIGXFSZ instead of reading ENOSPC)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from videoforge.processor import runner


@dataclass(frozen=True)
class CappedDir:
    path: Path
    size: int
    how: str  # "tmpfs" or "rlimit"


def _mount_tmpfs(path: Path, size: int) -> bool:
    if os.environ.get("VF_TEST_NO_TMPFS") or os.geteuid() != 0:
        return False
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return False
    stats = os.statvfs(path)
    if stats.f_blocks * stats.f_frsize > size * 2:  # not what we asked for: do not trust it
        subprocess.run(["umount", str(path)], check=False, timeout=30)
        return False
    return True


@pytest.fixture
def capped_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., CappedDir]]:
    """``make(size, per_file)``: a fresh directory that holds at most ``size`` bytes
    (tmpfs), or whose ffmpeg children may write files of at most ``per_file`` bytes
    (the stand-in; ``size`` when not given)."""
    mounted: list[Path] = []

    def make(size: int, per_file: int | None = None) -> CappedDir:
        path = tmp_path / f"capped-{len(mounted)}-{size}"
        path.mkdir()
        if _mount_tmpfs(path, size):
            mounted.append(path)
            return CappedDir(path, size, "tmpfs")
        real = runner.launch_argv

        def capped(argv: list[str]) -> list[str]:
            launched = real(argv)
            if any(str(path) in arg for arg in argv):
                return ["prlimit", f"--fsize={per_file or size}", "--", *launched]
            return launched

        monkeypatch.setattr(runner, "launch_argv", capped)
        return CappedDir(path, size, "rlimit")

    try:
        yield make
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False, timeout=30)

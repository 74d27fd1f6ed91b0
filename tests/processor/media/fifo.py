"""Whether anything opens a FIFO for reading: how the hostile-input tests prove ffmpeg
never followed a path it was handed (opening a FIFO to write succeeds only while
somebody holds it open to read, and never blocks with O_NONBLOCK)."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FifoWatch:
    opened: threading.Event = field(default_factory=threading.Event)
    #: Errors other than "no reader" (ENXIO), which would make the watch blind.
    surprises: list[OSError] = field(default_factory=list)


@contextlib.contextmanager
def watch_fifo(path: Path) -> Iterator[FifoWatch]:
    """Polls the FIFO at ``path`` while the block runs; ``opened`` is set if a reader
    ever had it open."""
    watch = FifoWatch()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    watch.surprises.append(exc)
            else:
                watch.opened.set()
                os.close(fd)
            stop.wait(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield watch
    finally:
        stop.set()
        poller.join()

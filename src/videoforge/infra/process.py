"""Child processes that die with their parent.

The kernel's parent-death signal (``PR_SET_PDEATHSIG``) is set through util-linux's
``setpriv --pdeathsig``: ``preexec_fn`` could make the same ``prctl`` call but is unsafe
in a process with threads. It fires when the *thread* that started the child exits, so
start long-lived children from the main thread (the event loop's).
"""

from __future__ import annotations

import functools
import shutil
import subprocess


@functools.cache
def setpriv_path() -> str | None:
    """util-linux's ``setpriv`` if it knows ``--pdeathsig`` (2.33+; Debian has it)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage else None


def die_with_parent(argv: list[str], signal_name: str = "KILL") -> list[str]:
    """``argv`` behind ``setpriv --pdeathsig SIGNAL``: the kernel signals the child when
    the process that started it dies, even by SIGKILL or the OOM killer. Without
    ``setpriv`` the argv is returned as is."""
    setpriv = setpriv_path()
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", signal_name, "--", *argv]

"""requirements.lock: what ``scripts/setup.sh`` installs on a fresh machine.

Every line must be a registry pin (``name==version``): a ``name @ file:///...`` line
written by ``pip freeze`` after a hand install points at a file only that machine has,
and set-up on any other machine fails.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")


def _lock_lines() -> list[str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_lock_line_is_a_registry_pin() -> None:
    bad = [line for line in _lock_lines() if not PIN.match(line)]
    assert bad == []


def test_every_declared_dependency_is_locked() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared.extend(extra)
    locked = {canonicalize_name(line.split("==")[0].split("[")[0]) for line in _lock_lines()}
    missing = sorted(
        {canonicalize_name(Requirement(spec).name) for spec in declared} - locked - {"videoforge"}
    )
    assert missing == []

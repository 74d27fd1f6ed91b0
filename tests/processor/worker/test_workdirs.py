"""Temp-dir names of a job's runs (what the stale-dir sweep relies on)."""

from __future__ import annotations

import uuid
from pathlib import Path

from videoforge.processor.workdirs import (
    make_workdir,
    parse_workdir,
    remove_workdir,
    workdir_prefix,
)


def test_workdir_names_round_trip(tmp_path: Path) -> None:
    job = uuid.uuid4()
    made = make_workdir(tmp_path / "work", job)
    again = make_workdir(tmp_path / "work", job)
    assert made != again  # a fresh directory per run
    assert made.name.startswith(workdir_prefix(job))
    parsed = parse_workdir(made)
    assert parsed is not None
    assert parsed.job_id == job
    assert parse_workdir(tmp_path / "something-else") is None
    (made / "out").mkdir()
    (made / "out" / "f").write_bytes(b"x")
    remove_workdir(made)
    assert not made.exists()

"""Deterministic keys and temp-dir names (what sweep and retries rely on)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from videoforge.processor.keys import (
    import_key,
    job_of_output_key,
    output_key,
    output_prefix,
    parse_workdir,
    workdir_prefix,
)
from videoforge.processor.workdirs import make_workdir, remove_workdir


def test_output_keys_are_deterministic_and_contained() -> None:
    job = uuid.uuid4()
    assert output_key(job, "hls/master.m3u8") == f"outputs/{job}/hls/master.m3u8"
    assert output_key(job, "hls/master.m3u8") == output_key(job, "/hls/master.m3u8")
    assert output_prefix(job) == f"outputs/{job}/"
    assert job_of_output_key(output_key(job, "mp4/720p.mp4")) == job
    for bad in ("", "../x", "a/../../b"):
        with pytest.raises(ValueError, match="bad relative output key"):
            output_key(job, bad)
    assert job_of_output_key(f"originals/u1/{job}/import") is None
    assert job_of_output_key("outputs/not-a-uuid-at-all-not-a-uuid-at-all/x") is None


def test_import_key_is_under_originals() -> None:
    job, video = uuid.uuid4(), uuid.uuid4()
    assert import_key("u1", video, job) == f"originals/u1/{video}/import"
    assert import_key("u1", None, job) == f"originals/u1/{job}/import"


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

"""What ``videoforge serve`` hands its worker children: one slot each, no metrics port,
and no chunked encoding with a single worker unless it was asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoforge.embedded import WorkerSupervisor
from videoforge.processor.config import ProcessingConfig
from videoforge.settings import Settings

pytestmark = pytest.mark.unit


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    monkeypatch.delenv("CHUNK_MIN_SECONDS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(VIDEOFORGE_DATA_DIR=str(tmp_path), METRICS_PORT=9100)


def test_a_single_worker_encodes_long_videos_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch)
    assert settings.chunk_min_seconds > 0  # chunking is on by default...
    env = WorkerSupervisor(settings, 1).child_env()
    assert env["CHUNK_MIN_SECONDS"] == "0"  # ...but not for one worker alone
    assert env["MAX_CONCURRENT_JOBS"] == "1"
    assert "METRICS_PORT" not in env
    monkeypatch.setenv("CHUNK_MIN_SECONDS", env["CHUNK_MIN_SECONDS"])
    assert ProcessingConfig.from_settings(Settings()).chunk_min_seconds == 0


def test_several_workers_share_a_long_video_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = WorkerSupervisor(_settings(tmp_path, monkeypatch), 2).child_env()
    assert "CHUNK_MIN_SECONDS" not in env  # the default applies


def test_an_operators_choice_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, monkeypatch, CHUNK_MIN_SECONDS="120")
    env = WorkerSupervisor(settings, 1).child_env()
    assert env["CHUNK_MIN_SECONDS"] == "120"

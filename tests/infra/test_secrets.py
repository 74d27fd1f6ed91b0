"""The install's own secret: generated once per data dir (0600), reused, one key per purpose."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from videoforge.infra import secrets
from videoforge.infra.secrets import KeyPurpose, purpose_key, server_secret, write_private_file
from videoforge.settings import DEV_JWT_SECRET, Settings, load_settings


def _settings(data_dir: Path, **extra: str) -> Settings:
    return load_settings(VIDEOFORGE_DATA_DIR=data_dir, **extra)


def test_a_fresh_install_generates_its_own_secret_with_mode_0600(tmp_path: Path) -> None:
    first = server_secret(_settings(tmp_path / "a"))
    path = tmp_path / "a" / secrets.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == first
    assert len(first) >= 32
    assert first != DEV_JWT_SECRET.encode()
    # Another install gets another secret.
    assert server_secret(_settings(tmp_path / "b")) != first


def test_the_secret_is_reused_on_every_later_start(tmp_path: Path) -> None:
    first = server_secret(_settings(tmp_path))
    secrets._install_secret.cache_clear()  # as a new process would
    assert server_secret(_settings(tmp_path)) == first


def test_jwt_secret_when_set_is_the_secret_and_no_file_is_written(tmp_path: Path) -> None:
    settings = _settings(tmp_path, JWT_SECRET="s" * 40)
    assert server_secret(settings) == b"s" * 40
    assert not (tmp_path / secrets.SECRET_FILE).exists()


def test_each_purpose_has_its_own_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    keys = {purpose_key(settings, purpose) for purpose in KeyPurpose}
    assert len(keys) == len(KeyPurpose)
    assert server_secret(settings) not in keys


def test_racing_starts_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "raced"
    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(lambda i: write_private_file(path, f"{i}".encode()), range(8)))
    assert len(results) == 1
    assert results == {path.read_bytes()}


def test_a_damaged_secret_file_is_refused_not_used(tmp_path: Path) -> None:
    (tmp_path / secrets.SECRET_FILE).write_text("short\n")
    with pytest.raises(RuntimeError, match="damaged"):
        server_secret(_settings(tmp_path))


def test_a_loosened_secret_or_signing_key_is_made_private_again(tmp_path: Path) -> None:
    """A backup restored or a copy made with a loose mode (0644): the next start puts the
    install's generated secret and signing key back to 0600, and keeps using them."""
    from videoforge.infra.auth.keys import local_signing_key, signing_key_path

    settings = _settings(tmp_path)
    first = server_secret(settings)
    key = local_signing_key(settings)
    secret_path = tmp_path / secrets.SECRET_FILE
    key_path = signing_key_path(settings)
    for path in (secret_path, key_path):
        path.chmod(0o644)
    secrets._install_secret.cache_clear()  # as a new process would
    assert server_secret(_settings(tmp_path)) == first
    again = local_signing_key(_settings(tmp_path))
    assert again.private_numbers() == key.private_numbers()
    for path in (secret_path, key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

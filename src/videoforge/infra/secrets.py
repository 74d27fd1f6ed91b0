"""The install's own secret, and one key per purpose derived from it.

No install runs on a secret anyone can read in the source. ``JWT_SECRET`` when set
(required in production, where every instance must share it); otherwise a random
secret generated on first start into ``VIDEOFORGE_DATA_DIR/server-secret`` (mode
0600) and reused on every later start, as the local accounts' ES256 key is.

Each purpose gets its own key, derived with HKDF under a label of its own, so a key
that leaks through one purpose (say, a storage URL key found in a log) can neither mint
nor verify anything of another.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import uuid
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from videoforge.settings import Settings

log = structlog.get_logger("videoforge.secrets")

SECRET_FILE = "server-secret"  # noqa: S105 - a file name, not a secret
#: Several embedded stores may share a URL key without sharing the server secret.
STORAGE_SIGNING_KEY_ENV = "STORAGE_SIGNING_KEY"
_SECRET_BYTES = 32


class KeyPurpose(StrEnum):
    """Everything the platform signs with a symmetric key."""

    #: The embedded object store's signed upload and download URLs.
    STORAGE_URLS = "local-storage/url-signing"
    #: The gallery's HLS playlist tokens.
    PLAYLIST_TOKENS = "gallery/playlist-token"


def write_private_file(path: Path, data: bytes) -> bytes:
    """Create ``path`` (0600, parent 0700) holding ``data`` unless it exists already.

    Returns what the file holds afterwards: when two processes start at once, the one
    that links first wins and the other reads its content, so they agree on one value.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link() fails if the file exists, unlike rename(), which would replace it.
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return data


def tighten_private_file(path: Path) -> None:
    """A file this install generated stays readable by its owner alone: a copy or a
    restore that loosened its mode (group or others may read it) is put back to 0600,
    with a warning, before it is used."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("private_file_mode_fixed", path=str(path), mode=oct(mode))


@lru_cache(maxsize=16)
def _install_secret(path: Path) -> bytes:
    if not path.exists():
        fresh = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).rstrip(b"=")
        content = write_private_file(path, fresh + b"\n")
        if content.strip() == fresh:
            log.info("server_secret_created", path=str(path))
    else:
        tighten_private_file(path)
        content = path.read_bytes()
    secret = content.strip()
    if len(secret) < 32:
        raise RuntimeError(f"the server secret in {path} is damaged (too short): remove it")
    return secret


def server_secret(settings: Settings) -> bytes:
    """``JWT_SECRET``, else this install's generated secret (created on first use)."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode("utf-8")
    return _install_secret((settings.data_dir / SECRET_FILE).resolve())


@lru_cache(maxsize=64)
def derive_key(secret: bytes, purpose: KeyPurpose) -> bytes:
    """A 32-byte key for ``purpose``: HKDF-SHA256 of ``secret`` under the purpose's label."""
    info = b"videoforge/" + purpose.value.encode("ascii") + b"/v1"
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def purpose_key(settings: Settings, purpose: KeyPurpose) -> bytes:
    """The key this install signs ``purpose`` with."""
    return derive_key(server_secret(settings), purpose)


def storage_signing_key(settings: Settings) -> bytes:
    """The embedded store's URL key: ``STORAGE_SIGNING_KEY`` (through the KDF) when set,
    so several stores can share one key without sharing the server secret; else derived."""
    explicit = os.environ.get(STORAGE_SIGNING_KEY_ENV)
    if explicit:
        return derive_key(explicit.encode("utf-8"), KeyPurpose.STORAGE_URLS)
    return purpose_key(settings, KeyPurpose.STORAGE_URLS)

"""Public keys a verifier trusts, by ``kid``, and the local ES256 signing key.

The signing key is read (or, on first start, made) here rather than by the gateway's
issuer alone because a process that mints tokens also verifies them in-process, from
the same key object; every other process reads the key file or the gateway's JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from videoforge.infra.secrets import tighten_private_file, write_private_file
from videoforge.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )

log = structlog.get_logger("videoforge.auth")

#: The only algorithm local tokens are signed with, and the only one accepted for them.
LOCAL_ALGORITHM = "ES256"
#: Cognito user pools sign with RS256; nothing else is accepted for them.
COGNITO_ALGORITHM = "RS256"
#: An unknown ``kid`` refetches the JWKS at most this often (seconds).
JWKS_REFETCH_INTERVAL = 60.0
#: Even with known keys, refresh the JWKS this often, so that rotations are picked up.
JWKS_MAX_AGE = 3600.0
DEFAULT_KEY_FILE = Path("keys") / "jwt-signing.pem"


# ------------------------------------------------------------------ signing key
def _b64url_uint(value: int, length: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode()


def public_jwk(public_key: EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK of a P-256 key, with its RFC 7638 thumbprint as ``kid``."""
    numbers = public_key.public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url_uint(numbers.x, 32),
        "y": _b64url_uint(numbers.y, 32),
    }
    # RFC 7638: members in lexicographic order, no whitespace.
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": LOCAL_ALGORITHM, "use": "sig"}


def load_private_key(path: Path) -> EllipticCurvePrivateKey:
    """The EC P-256 private key in the PEM file ``path``; RuntimeError says what is wrong."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read the JWT signing key {path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise RuntimeError(f"the JWT signing key {path} must be an EC P-256 private key (ES256)")
    return key


def _create_private_key(path: Path) -> EllipticCurvePrivateKey:
    """Generate a key at ``path`` (0600) unless another process won the race."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if write_private_file(path, pem) != pem:
        return load_private_key(path)
    log.info("jwt_signing_key_created", path=str(path))
    return key


def signing_key_path(settings: Settings) -> Path:
    """Where the local signing key lives (configured file or the data dir default)."""
    return settings.jwt_private_key_file or settings.data_dir / DEFAULT_KEY_FILE


def local_signing_key(settings: Settings) -> EllipticCurvePrivateKey:
    """The configured key, or the data dir's, generated on first use."""
    path = signing_key_path(settings)
    if settings.jwt_private_key_file is not None:
        return load_private_key(path)  # a configured key must exist: never invent one
    if path.exists():
        tighten_private_file(path)
        return load_private_key(path)
    return _create_private_key(path)


# ---------------------------------------------------------------------- key sets
class KeySet:
    """Where a verifier gets public keys by ``kid``."""

    async def get(self, kid: str) -> Any | None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class StaticKeySet(KeySet):
    """Keys known in-process (the local signing key's public half, or test keys)."""

    def __init__(self, keys: Mapping[str, Any]) -> None:
        self._keys = dict(keys)

    @classmethod
    def of_signing_key(cls, key: EllipticCurvePrivateKey) -> StaticKeySet:
        public = key.public_key()
        return cls({public_jwk(public)["kid"]: public})

    async def get(self, kid: str) -> Any | None:
        return self._keys.get(kid)


class KeyFileKeySet(KeySet):
    """The public half of the local signing key file, read once it exists.

    For a process that verifies local tokens without minting them and has no gateway
    URL (e.g. a gallery sharing the data dir): the gateway may create the key later,
    so a missing file is looked for again on the next token.
    """

    def __init__(self, path: Path, *, min_interval: float = JWKS_REFETCH_INTERVAL) -> None:
        self._path = path
        self._keys: dict[str, Any] = {}
        self._min_interval = min_interval
        self._last_load = float("-inf")

    def _load(self) -> None:
        self._last_load = time.monotonic()
        if not self._path.exists():
            return
        public = load_private_key(self._path).public_key()
        self._keys = {public_jwk(public)["kid"]: public}

    async def get(self, kid: str) -> Any | None:
        # No key yet (the gateway has not created it): looking again is one stat() call.
        # A key we have but an unknown kid (rotation): at most once per interval.
        if kid not in self._keys and (
            not self._keys or time.monotonic() - self._last_load >= self._min_interval
        ):
            await asyncio.to_thread(self._load)
        return self._keys.get(kid)


class RemoteKeySet(KeySet):
    """A JWKS fetched over HTTP, cached; an unknown ``kid`` refetches at most once a minute."""

    def __init__(
        self,
        url: str,
        *,
        algorithm: str,
        http: httpx.AsyncClient | None = None,
        min_refetch_interval: float = JWKS_REFETCH_INTERVAL,
        max_age: float = JWKS_MAX_AGE,
    ) -> None:
        self.url = url
        self.algorithm = algorithm
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self._min_interval = min_refetch_interval
        self._max_age = max_age
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    def _parse(self, document: Any) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no 'keys' list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg") not in (None, self.algorithm):
                continue
            try:
                if self.algorithm.startswith("RS") and entry.get("kty") == "RSA":
                    keys[entry["kid"]] = RSAAlgorithm.from_jwk(entry)
                elif self.algorithm.startswith("ES") and entry.get("kty") == "EC":
                    keys[entry["kid"]] = ECAlgorithm.from_jwk(entry)
            except (jwt.PyJWTError, ValueError, KeyError, TypeError):
                log.warning("jwks_key_skipped", url=self.url, kid=entry.get("kid"))
        return keys

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetch_count += 1
        try:
            response = await self._http.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = self._parse(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            # Keep serving the keys we have; the next attempt waits for the interval.
            log.warning("jwks_fetch_failed", url=self.url, error=str(exc))
            return
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def get(self, kid: str) -> Any | None:
        now = time.monotonic()
        stale = now - self._fetched_at >= self._max_age
        if (kid not in self._keys or stale) and now - self._attempted_at >= self._min_interval:
            async with self._lock:
                # Another waiter may have fetched while we waited for the lock.
                now = time.monotonic()
                stale = now - self._fetched_at >= self._max_age
                if (kid not in self._keys or stale) and (
                    now - self._attempted_at >= self._min_interval
                ):
                    await self._fetch()
        return self._keys.get(kid)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

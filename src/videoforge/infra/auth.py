"""Authentication shared by every service: the one JWT verifier and the request principal.

Two token sources, chosen by configuration alone:

- **Local accounts** (the embedded default): the gateway signs tokens with an ES256 key
  it generates on first use (``{data_dir}/keys/jwt-signing.pem``, mode 0600) or reads
  from ``JWT_PRIVATE_KEY_FILE``, and publishes the public half as a JWKS document at
  ``/.well-known/jwks.json``. :class:`TokenIssuer` mints; :class:`TokenVerifier`
  checks, in-process from the issuer's key or, in another process (the gallery in the
  distributed setup), from the key file or the gateway's JWKS URL.
- **Cognito**: tokens are minted by the user pool; the verifier fetches the pool's
  JWKS (RS256) and checks ``iss``, ``client_id`` and ``token_use``.

Whatever the source, the algorithm list is fixed here and never read from the token,
``exp``/``iss``/audience (or ``client_id``)/``token_use`` are required, and an unknown
``kid`` causes at most one JWKS refetch a minute. Every failure is a 401 with a
stable code (``token_invalid``, ``token_expired``, ``auth_required``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Request
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from videoforge.infra.errors import Forbidden, Unauthorized
from videoforge.infra.secrets import write_private_file
from videoforge.settings import AuthBackend, Settings

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
#: Local tokens carry their groups here (Cognito uses ``cognito:groups``).
LOCAL_GROUPS_CLAIM = "groups"
COGNITO_GROUPS_CLAIM = "cognito:groups"
#: An unknown ``kid`` refetches the JWKS at most this often (seconds).
JWKS_REFETCH_INTERVAL = 60.0
#: Even with known keys, refresh the JWKS this often, so that rotations are picked up.
JWKS_MAX_AGE = 3600.0
#: The display-name claim of local tokens (an OIDC standard claim, as Cognito uses).
NAME_CLAIM = "name"
#: Cognito claims a display name may come from, in order of preference (never ``email``).
COGNITO_NAME_CLAIMS = ("name", "preferred_username")
#: Display names longer than this are cut (the gallery stores up to 100 characters).
DISPLAY_NAME_MAX = 100
#: Something shaped like an e-mail address: never shown to others as a name.
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Clock skew tolerated on ``exp``/``iat``/``nbf`` (seconds).
LEEWAY_SECONDS = 30
DEFAULT_KEY_FILE = Path("keys") / "jwt-signing.pem"


class TokenUse:
    ACCESS = "access"
    REFRESH = "refresh"


def _invalid(message: str = "The access token is invalid.") -> Unauthorized:
    return Unauthorized(
        message,
        code="token_invalid",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _expired() -> Unauthorized:
    return Unauthorized(
        "The token has expired; refresh it or log in again.",
        code="token_expired",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: str
    #: The login name; for local accounts the e-mail address, so never show it to others.
    username: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    #: A name fit to show other users (``name`` claim); None when the token has none.
    display_name: str | None = None

    @property
    def public_name(self) -> str:
        """The display name, or a neutral stand-in derived from the id (never the e-mail)."""
        return self.display_name or neutral_name(self.user_id)


def neutral_name(user_id: str) -> str:
    """The name shown for a user without a display name: ``user-`` and 6 id characters."""
    return f"user-{user_id.replace('-', '')[:6]}"


def clean_display_name(value: Any) -> str | None:
    """A claim value usable as a public display name, or None.

    Blank values and anything shaped like an e-mail address are refused: a pool's
    ``preferred_username`` (or a careless sign-up name) may be the address itself, and
    e-mail addresses must never reach other users.
    """
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())[:DISPLAY_NAME_MAX].strip()
    if not name or _EMAIL_LIKE.fullmatch(name):
        return None
    return name


@dataclass(frozen=True)
class RefreshClaims:
    """What a verified local refresh token says (the accounts service checks ``jti``)."""

    user_id: str
    jti: str
    expires_at: float


# --------------------------------------------------------------------------- keys
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


def _load_private_key(path: Path) -> EllipticCurvePrivateKey:
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
        return _load_private_key(path)
    log.info("jwt_signing_key_created", path=str(path))
    return key


def signing_key_path(settings: Settings) -> Path:
    """Where the local signing key lives (configured file or the data dir default)."""
    return settings.jwt_private_key_file or settings.data_dir / DEFAULT_KEY_FILE


# ------------------------------------------------------------------------- issuer
class TokenIssuer:
    """Mints local access and refresh tokens (ES256) and publishes the public JWKS."""

    def __init__(
        self,
        private_key: EllipticCurvePrivateKey,
        *,
        issuer: str,
        audience: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self._jwk = public_jwk(self.public_key)
        self.kid = self._jwk["kid"]
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        """Load the configured key, or generate the data-dir key on first use."""
        path = signing_key_path(settings)
        if settings.jwt_private_key_file is not None:
            key = _load_private_key(path)  # a configured key must exist: never invent one
        elif path.exists():
            key = _load_private_key(path)
        else:
            key = _create_private_key(path)
        return cls(
            key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        )

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self._private_key,
            algorithm=LOCAL_ALGORITHM,
            headers={"kid": self.kid, "typ": "JWT"},
        )

    def _base_claims(self, user_id: str, token_use: str, ttl: int, jti: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti,
            "token_use": token_use,
        }

    def issue_access(
        self,
        user_id: str,
        *,
        username: str | None = None,
        groups: Iterable[str] = (),
        display_name: str | None = None,
    ) -> str:
        """A short-lived access token for ``user_id`` with its groups and display name.

        ``display_name`` goes into the ``name`` claim, which services may show to other
        users; a value that looks like an e-mail address is left out.
        """
        claims = self._base_claims(user_id, TokenUse.ACCESS, self.access_ttl, uuid.uuid4().hex)
        claims[LOCAL_GROUPS_CLAIM] = sorted(set(groups))
        if username is not None:
            claims["username"] = username
        name = clean_display_name(display_name)
        if name is not None:
            claims[NAME_CLAIM] = name
        return self._encode(claims)

    def issue_refresh(self, user_id: str, *, jti: str | None = None, ttl: int | None = None) -> str:
        """A long-lived refresh token; store its ``jti`` to be able to revoke it."""
        claims = self._base_claims(
            user_id, TokenUse.REFRESH, ttl or self.refresh_ttl, jti or uuid.uuid4().hex
        )
        return self._encode(claims)

    def verify_refresh(self, token: str) -> RefreshClaims:
        """Check a refresh token's signature and claims (revocation is the caller's job)."""
        claims = _decode(
            token,
            key=self.public_key,
            algorithm=LOCAL_ALGORITHM,
            issuer=self.issuer,
            audience=self.audience,
            expected_use=TokenUse.REFRESH,
            expected_kid=self.kid,
        )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _invalid("The refresh token is invalid.")
        return RefreshClaims(user_id=str(claims["sub"]), jti=jti, expires_at=float(claims["exp"]))

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document (``/.well-known/jwks.json``)."""
        return {"keys": [dict(self._jwk)]}


# ------------------------------------------------------------------------ decoding
def _decode(
    token: str,
    *,
    key: Any,
    algorithm: str,
    issuer: str,
    audience: str | None,
    expected_use: str,
    expected_kid: str | None = None,
) -> dict[str, Any]:
    """Verify signature and registered claims with a fixed algorithm; 401 on any failure."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid() from None
    # The header is attacker-controlled: it may only confirm what we already expect.
    if header.get("alg") != algorithm:
        raise _invalid()
    if expected_kid is not None and header.get("kid") != expected_kid:
        raise _invalid()
    required = ["exp", "iss", "sub", "token_use"]
    if audience is not None:
        required.append("aud")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": required, "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise _expired() from None
    except jwt.PyJWTError:
        raise _invalid() from None
    if claims.get("token_use") != expected_use:
        raise _invalid(f"This endpoint needs an {expected_use} token.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _invalid()
    return claims


def _groups(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


# ----------------------------------------------------------------------- key sets
class KeySet:
    """Where a verifier gets public keys by ``kid``."""

    async def get(self, kid: str) -> Any | None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class StaticKeySet(KeySet):
    """Keys known in-process (the gateway's own issuer, or a key file on disk)."""

    def __init__(self, keys: Mapping[str, Any]) -> None:
        self._keys = dict(keys)

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
        public = _load_private_key(self._path).public_key()
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


# ------------------------------------------------------------------------ verifier
class TokenVerifier:
    """The one access-token verifier: fixed algorithm, issuer's keys, required claims."""

    def __init__(
        self,
        keys: KeySet,
        *,
        algorithm: str,
        issuer: str,
        audience: str | None = None,
        client_id: str | None = None,
        groups_claim: str = LOCAL_GROUPS_CLAIM,
        admin_group: str = "admin",
        name_claims: tuple[str, ...] = (NAME_CLAIM,),
    ) -> None:
        if audience is None and client_id is None:
            raise ValueError("a verifier needs an audience or a client id to check")
        self.keys = keys
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.client_id = client_id
        self.groups_claim = groups_claim
        self.admin_group = admin_group
        self.name_claims = name_claims

    async def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise :class:`Unauthorized`."""
        if not token or token.count(".") != 2 or len(token) > 16_384:
            raise _invalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid() from None
        kid = header.get("kid")
        if header.get("alg") != self.algorithm or not isinstance(kid, str) or not kid:
            raise _invalid()
        key = await self.keys.get(kid)
        if key is None:
            raise _invalid("The token was signed by an unknown key.")
        claims = _decode(
            token,
            key=key,
            algorithm=self.algorithm,
            issuer=self.issuer,
            audience=self.audience,
            expected_use=TokenUse.ACCESS,
        )
        if self.client_id is not None and claims.get("client_id") != self.client_id:
            raise _invalid("The token was issued to another client.")
        groups = _groups(claims.get(self.groups_claim))
        username = claims.get("username")
        display_name = next(
            (
                name
                for name in (clean_display_name(claims.get(c)) for c in self.name_claims)
                if name is not None
            ),
            None,
        )
        return Principal(
            user_id=str(claims["sub"]),
            username=username if isinstance(username, str) else None,
            groups=groups,
            is_admin=self.admin_group in groups,
            display_name=display_name,
        )

    async def aclose(self) -> None:
        await self.keys.aclose()


def build_verifier(settings: Settings, *, issuer: TokenIssuer | None = None) -> TokenVerifier:
    """The verifier the settings call for (Cognito JWKS, or the local issuer's keys)."""
    if settings.auth_backend is AuthBackend.COGNITO:
        jwks_url = settings.resolved_cognito_jwks_url
        cognito_issuer = settings.resolved_cognito_issuer
        if not jwks_url or not cognito_issuer:  # both derive from the pool id, which is set
            raise RuntimeError("Cognito is configured without an issuer or JWKS URL")
        return TokenVerifier(
            RemoteKeySet(jwks_url, algorithm=COGNITO_ALGORITHM),
            algorithm=COGNITO_ALGORITHM,
            issuer=cognito_issuer,
            client_id=settings.cognito_client_id,
            groups_claim=COGNITO_GROUPS_CLAIM,
            admin_group=settings.admin_group,
            name_claims=COGNITO_NAME_CLAIMS,
        )
    keys: KeySet
    if issuer is not None:
        keys = StaticKeySet({issuer.kid: issuer.public_key})
    elif settings.jwt_private_key_file is not None or (
        settings.gateway_url is None or signing_key_path(settings).exists()
    ):
        keys = KeyFileKeySet(signing_key_path(settings))
    else:
        keys = RemoteKeySet(
            f"{settings.gateway_url}/.well-known/jwks.json", algorithm=LOCAL_ALGORITHM
        )
    return TokenVerifier(
        keys,
        algorithm=LOCAL_ALGORITHM,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        groups_claim=LOCAL_GROUPS_CLAIM,
        admin_group=settings.admin_group,
    )


# ------------------------------------------------------------------ FastAPI hooks
def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header; None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.infra.verifier
    return verifier


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when anonymous. A bad token is a 401, never anonymous."""
    token = bearer_token(request)
    if token is None:
        return None
    return await _verifier(request).verify(token)


async def require_principal(request: Request) -> Principal:
    """The caller; 401 ``auth_required`` when no token was sent."""
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized(
            "Log in to do this.",
            code="auth_required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def require_admin(request: Request) -> Principal:
    """The caller, who must be in the admin group (403 otherwise)."""
    principal = await require_principal(request)
    if not principal.is_admin:
        raise Forbidden("Only administrators can do this.", code="admin_required")
    return principal


__all__ = [
    "COGNITO_ALGORITHM",
    "LOCAL_ALGORITHM",
    "KeySet",
    "Principal",
    "RefreshClaims",
    "RemoteKeySet",
    "StaticKeySet",
    "TokenIssuer",
    "TokenVerifier",
    "bearer_token",
    "build_verifier",
    "clean_display_name",
    "neutral_name",
    "optional_principal",
    "require_admin",
    "require_principal",
    "signing_key_path",
]

"""The one access-token verifier: fixed algorithm, the issuer's keys, required claims.

The algorithm comes from configuration, never from the token; the token's header may
only confirm what is expected. :func:`decode_token` is also what the gateway's issuer
checks its own refresh tokens with, so both paths refuse the same things.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt

from videoforge.infra.auth.keys import (
    COGNITO_ALGORITHM,
    LOCAL_ALGORITHM,
    KeyFileKeySet,
    KeySet,
    RemoteKeySet,
    StaticKeySet,
    signing_key_path,
)
from videoforge.infra.auth.principal import (
    Principal,
    clean_display_name,
    expired_token,
    invalid_token,
)
from videoforge.settings import AuthBackend, Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

#: Local tokens carry their groups here (Cognito uses ``cognito:groups``).
LOCAL_GROUPS_CLAIM = "groups"
COGNITO_GROUPS_CLAIM = "cognito:groups"
#: The display-name claim of local tokens (an OIDC standard claim, as Cognito uses).
NAME_CLAIM = "name"
#: Cognito claims a display name may come from, in order of preference (never ``email``).
COGNITO_NAME_CLAIMS = ("name", "preferred_username")
#: Clock skew tolerated on ``exp``/``iat``/``nbf`` (seconds).
LEEWAY_SECONDS = 30
#: A verified access token is remembered this long (never past its own expiry), so a
#: client's next requests skip the signature check: a browser sends the same token on
#: every call. A key withdrawn from the key set stops being trusted this much later.
VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 4096


class TokenUse:
    ACCESS = "access"
    REFRESH = "refresh"


def decode_token(
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
        raise invalid_token() from None
    # The header is attacker-controlled: it may only confirm what we already expect.
    if header.get("alg") != algorithm:
        raise invalid_token()
    if expected_kid is not None and header.get("kid") != expected_kid:
        raise invalid_token()
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
        raise expired_token() from None
    except jwt.PyJWTError:
        raise invalid_token() from None
    if claims.get("token_use") != expected_use:
        raise invalid_token(f"This endpoint needs an {expected_use} token.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise invalid_token()
    return claims


def _groups(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


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
        cache_seconds: float = VERIFIED_CACHE_SECONDS,
        cache_size: int = VERIFIED_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
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
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        # token -> (trusted until, its principal); least recently used first.
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise :class:`Unauthorized`.

        The very same token verified less than ``cache_seconds`` ago is answered from
        memory, until the moment its expiry (with the leeway) would refuse it.
        """
        if not token or token.count(".") != 2 or len(token) > 16_384:
            raise invalid_token()
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None:
            until, principal = cached
            if now < until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token)
        if self._cache_size > 0 and self._cache_seconds > 0:
            self._verified[token] = (
                min(expires + LEEWAY_SECONDS, now + self._cache_seconds),
                principal,
            )
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token() from None
        kid = header.get("kid")
        if header.get("alg") != self.algorithm or not isinstance(kid, str) or not kid:
            raise invalid_token()
        key = await self.keys.get(kid)
        if key is None:
            raise invalid_token("The token was signed by an unknown key.")
        claims = decode_token(
            token,
            key=key,
            algorithm=self.algorithm,
            issuer=self.issuer,
            audience=self.audience,
            expected_use=TokenUse.ACCESS,
        )
        if self.client_id is not None and claims.get("client_id") != self.client_id:
            raise invalid_token("The token was issued to another client.")
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
        principal = Principal(
            user_id=str(claims["sub"]),
            username=username if isinstance(username, str) else None,
            groups=groups,
            is_admin=self.admin_group in groups,
            display_name=display_name,
        )
        return principal, float(claims["exp"])

    async def aclose(self) -> None:
        await self.keys.aclose()


def build_verifier(
    settings: Settings, *, signing_key: EllipticCurvePrivateKey | None = None
) -> TokenVerifier:
    """The verifier the settings call for: Cognito's JWKS, or for local tokens the
    ``signing_key`` this process mints with, else the key file or the gateway's JWKS."""
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
    if signing_key is not None:
        keys = StaticKeySet.of_signing_key(signing_key)
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

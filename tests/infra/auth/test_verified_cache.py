"""The verifier remembers tokens it verified: the same bytes skip the signature check,
never past the token's own expiry, and nothing else is let through by it."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from videoforge.infra.auth import verifier as verifier_module
from videoforge.infra.auth.keys import StaticKeySet
from videoforge.infra.auth.verifier import LEEWAY_SECONDS, TokenVerifier
from videoforge.infra.errors import Unauthorized

pytestmark = pytest.mark.unit

ISSUER = "https://gateway.test"
AUDIENCE = "videoforge"
START = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _token(key: ec.EllipticCurvePrivateKey, **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "token_use": "access",
        "iat": int(START),
        "exp": int(START) + 300,
    }
    claims.update(changes)
    return jwt.encode(claims, key, "ES256", headers={"kid": "k1"})


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _verifier(key: ec.EllipticCurvePrivateKey, clock: Clock, **options: Any) -> TokenVerifier:
    return TokenVerifier(
        StaticKeySet({"k1": key.public_key()}),
        algorithm="ES256",
        issuer=ISSUER,
        audience=AUDIENCE,
        clock=clock,
        **options,
    )


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature checks, with PyJWT's clock set to the test's."""
    seen: list[str] = []
    real = verifier_module.decode_token

    def counting(token: str, **kwargs: Any) -> dict[str, Any]:
        seen.append(token)
        return real(token, **kwargs)

    monkeypatch.setattr(verifier_module, "decode_token", counting)
    return seen


async def test_the_same_token_is_checked_once(
    key: ec.EllipticCurvePrivateKey, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(jwt.api_jwt, "datetime", _frozen_datetime(START))
    verifier = _verifier(key, clock)
    token = _token(key)
    first = await verifier.verify(token)
    clock.now += 30
    second = await verifier.verify(token)
    assert first == second
    assert first.user_id == "user-1"
    assert decodes == [token]


async def test_a_remembered_token_expires_with_the_token(
    key: ec.EllipticCurvePrivateKey, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(jwt.api_jwt, "datetime", _frozen_datetime(START))
    verifier = _verifier(key, clock, cache_seconds=3600)
    token = _token(key, exp=int(START) + 10)
    await verifier.verify(token)
    clock.now = START + 10 + LEEWAY_SECONDS - 1
    await verifier.verify(token)
    assert len(decodes) == 1  # still within exp + leeway: remembered
    clock.now = START + 10 + LEEWAY_SECONDS
    monkeypatch.setattr(jwt.api_jwt, "datetime", _frozen_datetime(clock.now + 1))
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    assert refused.value.code == "token_expired"
    assert len(decodes) == 2  # checked again, and refused as expired


async def test_remembering_is_bounded_in_time_and_size(
    key: ec.EllipticCurvePrivateKey, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(jwt.api_jwt, "datetime", _frozen_datetime(START))
    verifier = _verifier(key, clock, cache_seconds=60, cache_size=2)
    a, b, c = (_token(key, sub=f"user-{n}") for n in "abc")
    for token in (a, b, c):  # c pushes out a, the least recently used
        await verifier.verify(token)
    await verifier.verify(b)
    await verifier.verify(a)
    assert decodes == [a, b, c, a]
    clock.now += 61  # past cache_seconds: checked again
    await verifier.verify(a)
    assert decodes == [a, b, c, a, a]


async def test_a_tampered_copy_of_a_remembered_token_is_refused(
    key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(jwt.api_jwt, "datetime", _frozen_datetime(START))
    verifier = _verifier(key, clock)
    token = _token(key)
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b"user-1", b"user-2")
    ).decode()
    with pytest.raises(Unauthorized):
        await verifier.verify(f"{header}.{forged_payload}.{signature}")
    other_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthorized):
        await verifier.verify(_token(other_key))


def _frozen_datetime(at: float) -> Any:
    """PyJWT reads the time through ``datetime.now(tz=timezone.utc)``."""
    from datetime import datetime

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.fromtimestamp(at, tz or UTC)

    return Frozen

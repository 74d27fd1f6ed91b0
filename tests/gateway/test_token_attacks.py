"""Forged and misused tokens are 401 on a protected endpoint (local accounts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.auth.keys import signing_key_path

from .conftest import Gateway, GatewayFactory, make_settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


@pytest.fixture
async def gw(make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str) -> Gateway:
    return await make_gateway(make_settings(tmp_path, sqlite_url), with_gallery=False)


@pytest.fixture
async def victim(gw: Gateway) -> dict[str, Any]:
    return await gw.signup("victim@example.com")


def _claims(gw: Gateway, sub: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": gw.settings.jwt_issuer,
        "aud": gw.settings.jwt_audience,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "token_use": "access",
        "groups": ["admin"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _private_key(gw: Gateway) -> Any:
    return serialization.load_pem_private_key(
        signing_key_path(gw.settings).read_bytes(), password=None
    )


def _kid(gw: Gateway) -> str:
    return gw.issuer.kid


async def _assert_refused(gw: Gateway, token: str, code: str = "token_invalid") -> None:
    for path in ("/api/auth/me", "/api/jobs"):
        response = await gw.client.get(path, headers=gw.bearer(token))
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == code
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_genuine_token_is_accepted(gw: Gateway, victim: dict[str, Any]) -> None:
    token = jwt.encode(
        _claims(gw, victim["user"]["id"]), _private_key(gw), "ES256", headers={"kid": _kid(gw)}
    )
    response = await gw.client.get("/api/auth/me", headers=gw.bearer(token))
    assert response.status_code == 200  # the forging helpers below are otherwise right


async def test_alg_none(gw: Gateway, victim: dict[str, Any]) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": _kid(gw)}
    token = f"{_segment(header)}.{_segment(_claims(gw, victim['user']['id']))}."
    await _assert_refused(gw, token)


async def test_hs256_signed_with_the_public_key(gw: Gateway, victim: dict[str, Any]) -> None:
    public_pem = (
        _private_key(gw)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    jwks = (await gw.client.get("/.well-known/jwks.json")).json()
    for secret in (public_pem, json.dumps(jwks["keys"][0]).encode()):
        header = {"alg": "HS256", "typ": "JWT", "kid": _kid(gw)}
        signing_input = f"{_segment(header)}.{_segment(_claims(gw, victim['user']['id']))}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await _assert_refused(gw, f"{signing_input}.{_b64(signature)}")


async def test_wrong_issuer(gw: Gateway, victim: dict[str, Any]) -> None:
    claims = _claims(gw, victim["user"]["id"], iss="https://evil.example")
    token = jwt.encode(claims, _private_key(gw), "ES256", headers={"kid": _kid(gw)})
    await _assert_refused(gw, token)


async def test_wrong_or_missing_audience(gw: Gateway, victim: dict[str, Any]) -> None:
    for aud in ("another-service", None):
        claims = _claims(gw, victim["user"]["id"])
        claims.pop("aud")
        if aud:
            claims["aud"] = aud
        token = jwt.encode(claims, _private_key(gw), "ES256", headers={"kid": _kid(gw)})
        await _assert_refused(gw, token)


async def test_expired(gw: Gateway, victim: dict[str, Any]) -> None:
    past = int(time.time()) - 3600
    claims = _claims(gw, victim["user"]["id"], iat=past - 900, exp=past)
    token = jwt.encode(claims, _private_key(gw), "ES256", headers={"kid": _kid(gw)})
    await _assert_refused(gw, token, code="token_expired")


async def test_missing_exp(gw: Gateway, victim: dict[str, Any]) -> None:
    claims = _claims(gw, victim["user"]["id"])
    claims.pop("exp")
    token = jwt.encode(claims, _private_key(gw), "ES256", headers={"kid": _kid(gw)})
    await _assert_refused(gw, token)


async def test_unknown_kid_and_foreign_key(gw: Gateway, victim: dict[str, Any]) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    claims = _claims(gw, victim["user"]["id"])
    # Its own kid: unknown. Our kid: the signature does not match our key.
    await _assert_refused(gw, jwt.encode(claims, stranger, "ES256", headers={"kid": "abc"}))
    await _assert_refused(gw, jwt.encode(claims, stranger, "ES256", headers={"kid": _kid(gw)}))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await _assert_refused(gw, jwt.encode(claims, rsa_key, "RS256", headers={"kid": _kid(gw)}))


async def test_refresh_token_used_as_access(gw: Gateway, victim: dict[str, Any]) -> None:
    await _assert_refused(gw, victim["refresh_token"])


async def test_tampered_payload(gw: Gateway, victim: dict[str, Any]) -> None:
    header, payload, signature = victim["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["admin"]
    await _assert_refused(gw, f"{header}.{_segment(claims)}.{signature}")


async def test_token_from_another_gateway_key(
    gw: Gateway, victim: dict[str, Any], tmp_path: Path, sqlite_url: str
) -> None:
    other = TokenIssuer.from_settings(make_settings(tmp_path / "other", sqlite_url))
    await _assert_refused(gw, other.issue_access(victim["user"]["id"], groups=["admin"]))


async def test_garbage_and_malformed_headers(gw: Gateway) -> None:
    for value in ("Bearer not.a.jwt", "Bearer abc", "Basic dXNlcjpwYXNz", "Bearer"):
        response = await gw.client.get("/api/auth/me", headers={"Authorization": value})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_invalid"
    anonymous = await gw.client.get("/api/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "auth_required"

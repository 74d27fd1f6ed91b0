"""The display name in tokens: local ``name`` claim, Cognito ``name`` /
``preferred_username``; never an e-mail address, never the ``username``/``email`` claims."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.auth.keys import COGNITO_ALGORITHM, StaticKeySet, local_signing_key
from videoforge.infra.auth.principal import neutral_name
from videoforge.infra.auth.verifier import COGNITO_NAME_CLAIMS, TokenVerifier, build_verifier
from videoforge.settings import Settings

ISSUER = "https://idp.example/pool"


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, VIDEOFORGE_DATA_DIR=str(tmp_path))


async def test_local_token_carries_name_not_email(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    issuer = TokenIssuer.from_settings(settings)
    verifier = build_verifier(settings, signing_key=local_signing_key(settings))
    token = issuer.issue_access("u1", username="ada@example.com", display_name=" Ada  L. ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["name"] == "Ada L."
    principal = await verifier.verify(token)
    assert principal.display_name == "Ada L."
    assert principal.username == "ada@example.com"  # the login name stays as it was

    # No display name: no claim, and the public name is neutral, not the e-mail.
    bare = await verifier.verify(issuer.issue_access("u1-abcdef", username="ada@example.com"))
    assert bare.display_name is None
    assert bare.public_name == neutral_name("u1-abcdef") == "user-u1abcd"

    # An e-mail-shaped display name is never put in the token.
    shaped = issuer.issue_access("u1", display_name="ada@example.com")
    assert "name" not in jwt.decode(shaped, options={"verify_signature": False})
    assert (await verifier.verify(shaped)).display_name is None


def _cognito_token(key: rsa.RSAPrivateKey, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "client_id": "client-a",
        "token_use": "access",
        "exp": now + 300,
        "iat": now,
        "username": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "email": "grace@example.com",
        **extra,
    }
    return jwt.encode(claims, key, COGNITO_ALGORITHM, headers={"kid": "k1"})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"name": "Grace", "preferred_username": "ghopper"}, "Grace"),
        ({"preferred_username": "ghopper"}, "ghopper"),
        ({"preferred_username": "grace@example.com"}, None),
        ({"name": "   ", "preferred_username": "ghopper"}, "ghopper"),
        ({}, None),  # only ``email`` and ``username``: neither is a display name
    ],
)
async def test_cognito_name_claims(extra: dict[str, Any], expected: str | None) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = TokenVerifier(
        StaticKeySet({"k1": key.public_key()}),
        algorithm=COGNITO_ALGORITHM,
        issuer=ISSUER,
        client_id="client-a",
        groups_claim="cognito:groups",
        name_claims=COGNITO_NAME_CLAIMS,
    )
    principal = await verifier.verify(_cognito_token(key, **extra))
    assert principal.display_name == expected
    assert "@" not in principal.public_name
    if expected is None:
        assert principal.public_name == "user-0f8fad"

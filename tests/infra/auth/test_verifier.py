"""The shared verifier: local keys, remote JWKS (cached, refetch throttled), key files,
the FastAPI dependencies."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from jwt.algorithms import RSAAlgorithm

from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.infra.auth.keys import RemoteKeySet, local_signing_key
from videoforge.infra.auth.principal import Principal, optional_principal, require_principal
from videoforge.infra.auth.verifier import TokenVerifier, build_verifier
from videoforge.infra.errors import Unauthorized, install_error_handlers
from videoforge.settings import Settings


class JwksServer:
    """A loopback HTTP server publishing a JWKS document and counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        entries = []
        for kid, key in keys:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            entries.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        self.document = {"keys": entries}


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


ISSUER = "https://idp.example/pool"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key: rsa.RSAPrivateKey, kid: str, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "client_id": "client-a",
        "token_use": "access",
        "exp": now + 300,
        "iat": now,
        "username": "user-1",
        "cognito:groups": ["admin", "editors"],
    }
    claims.update(changes)
    return jwt.encode(claims, key, "RS256", headers={"kid": kid})


def _verifier(url: str, *, interval: float = 60.0) -> TokenVerifier:
    return TokenVerifier(
        RemoteKeySet(url, algorithm="RS256", min_refetch_interval=interval),
        algorithm="RS256",
        issuer=ISSUER,
        client_id="client-a",
        groups_claim="cognito:groups",
    )


async def test_remote_jwks_is_cached(jwks_server: JwksServer) -> None:
    key = _rsa()
    jwks_server.publish(("k1", key))
    verifier = _verifier(jwks_server.url)
    try:
        for _ in range(5):
            principal = await verifier.verify(_token(key, "k1"))
        assert principal == Principal(
            user_id="user-1",
            username="user-1",
            groups=frozenset({"admin", "editors"}),
            is_admin=True,
        )
        assert jwks_server.hits == 1
    finally:
        await verifier.aclose()


async def test_unknown_kid_refetches_at_most_once_per_interval(jwks_server: JwksServer) -> None:
    key, stranger, rotated = _rsa(), _rsa(), _rsa()
    # Tokens are made up front: RSA signing on a busy machine must not eat the interval.
    burst = [_token(stranger, f"x{i}") for i in range(20)]
    rotated_token = _token(rotated, "k2")
    jwks_server.publish(("k1", key))
    verifier = _verifier(jwks_server.url, interval=1.5)
    try:
        await verifier.verify(_token(key, "k1"))
        assert jwks_server.hits == 1
        with pytest.raises(Unauthorized):  # right after a fetch: no refetch at all
            await verifier.verify(burst[0])
        assert jwks_server.hits == 1
        await asyncio.sleep(1.6)
        # A burst of unknown kids (also concurrently) costs one refetch, not one per token.
        results = await asyncio.gather(
            *(verifier.verify(t) for t in burst[:10]), return_exceptions=True
        )
        assert all(isinstance(r, Unauthorized) for r in results)
        for token in burst[10:]:
            with pytest.raises(Unauthorized):
                await verifier.verify(token)
        assert jwks_server.hits == 2
        # Key rotation: the new key is published; after the interval it is picked up.
        jwks_server.publish(("k1", key), ("k2", rotated))
        with pytest.raises(Unauthorized):
            await verifier.verify(rotated_token)  # still inside the interval
        assert jwks_server.hits == 2
        await asyncio.sleep(1.6)
        principal = await verifier.verify(rotated_token)
        assert principal.user_id == "user-1"
        assert jwks_server.hits == 3
    finally:
        await verifier.aclose()


async def test_jwks_down_keeps_known_keys(jwks_server: JwksServer) -> None:
    key = _rsa()
    jwks_server.publish(("k1", key))
    verifier = _verifier(jwks_server.url, interval=0.0)
    try:
        await verifier.verify(_token(key, "k1"))
        jwks_server.httpd.shutdown()
        jwks_server.httpd.server_close()
        with pytest.raises(Unauthorized):
            await verifier.verify(_token(_rsa(), "other"))
        assert (await verifier.verify(_token(key, "k1"))).user_id == "user-1"
    finally:
        await verifier.aclose()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"client_id": "client-b"}, "token_invalid"),
        ({"client_id": None}, "token_invalid"),
        ({"token_use": "id"}, "token_invalid"),
        ({"token_use": None}, "token_invalid"),
        ({"iss": "https://idp.example/other-pool"}, "token_invalid"),
        ({"exp": int(time.time()) - 3600}, "token_expired"),
    ],
)
async def test_cognito_style_claims_are_required(
    jwks_server: JwksServer, changes: dict[str, Any], code: str
) -> None:
    key = _rsa()
    jwks_server.publish(("k1", key))
    verifier = _verifier(jwks_server.url)
    claims = {k: v for k, v in changes.items() if v is not None}
    token = _token(key, "k1", **claims)
    if any(v is None for v in changes.values()):
        decoded = jwt.decode(token, options={"verify_signature": False})
        for name, value in changes.items():
            if value is None:
                decoded.pop(name, None)
        token = jwt.encode(decoded, key, "RS256", headers={"kid": "k1"})
    try:
        with pytest.raises(Unauthorized) as info:
            await verifier.verify(token)
        assert info.value.code == code
    finally:
        await verifier.aclose()


async def test_es256_token_refused_by_an_rs256_verifier(jwks_server: JwksServer) -> None:
    key = _rsa()
    jwks_server.publish(("k1", key))
    verifier = _verifier(jwks_server.url)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        {
            "iss": ISSUER,
            "sub": "u",
            "client_id": "client-a",
            "token_use": "access",
            "exp": int(time.time()) + 60,
        },
        ec_key,
        "ES256",
        headers={"kid": "k1"},
    )
    try:
        with pytest.raises(Unauthorized):
            await verifier.verify(token)
        assert jwks_server.hits == 0  # refused from the header alone
    finally:
        await verifier.aclose()


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, VIDEOFORGE_DATA_DIR=str(tmp_path), **values)


async def test_key_file_created_private_and_shared(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # A verifier without the key (a gallery sharing the data dir) that starts first.
    early = build_verifier(settings)
    stranger = TokenIssuer.from_settings(_settings(tmp_path / "other"))
    with pytest.raises(Unauthorized):
        await early.verify(stranger.issue_access("u1"))
    issuer = TokenIssuer.from_settings(settings)
    path = tmp_path / "keys" / "jwt-signing.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    token = issuer.issue_access("u1", username="a@example.com", groups=["admin"])
    in_process = build_verifier(settings, signing_key=local_signing_key(settings))
    assert (await in_process.verify(token)).is_admin
    # The key appeared after the early verifier looked: it finds it on the next token.
    assert (await early.verify(token)).user_id == "u1"
    assert (await build_verifier(settings).verify(token)).username == "a@example.com"


async def test_configured_key_file_is_used_and_never_invented(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "mine.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    issuer = TokenIssuer.from_settings(_settings(tmp_path, JWT_PRIVATE_KEY_FILE=str(path)))
    token = issuer.issue_access("u2")
    public = key.public_key()
    assert jwt.decode(token, public, algorithms=["ES256"], audience="videoforge")["sub"] == "u2"
    with pytest.raises(RuntimeError, match="cannot read"):
        TokenIssuer.from_settings(
            _settings(tmp_path, JWT_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"))
        )
    assert not (tmp_path / "keys").exists()


async def test_refresh_tokens_verify_only_as_refresh(tmp_path: Path) -> None:
    issuer = TokenIssuer.from_settings(_settings(tmp_path))
    refresh = issuer.issue_refresh("u3", jti="abc123")
    claims = issuer.verify_refresh(refresh)
    assert (claims.user_id, claims.jti) == ("u3", "abc123")
    with pytest.raises(Unauthorized):
        issuer.verify_refresh(issuer.issue_access("u3"))
    settings = _settings(tmp_path)
    with pytest.raises(Unauthorized):
        await build_verifier(settings, signing_key=local_signing_key(settings)).verify(refresh)


async def test_fastapi_dependencies(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    issuer = TokenIssuer.from_settings(settings)

    class _Infra:
        verifier = build_verifier(settings, signing_key=local_signing_key(settings))

    app = FastAPI()
    install_error_handlers(app)
    app.state.infra = _Infra()

    @app.get("/optional")
    async def optional(p: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
        return {"user": p.user_id if p else None}

    @app.get("/required")
    async def required(p: Principal = Depends(require_principal)) -> dict[str, Any]:
        return {"user": p.user_id}

    token = issuer.issue_access("u4")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/optional")).json() == {"user": None}
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/optional", headers=auth)).json() == {"user": "u4"}
        bad = await client.get("/optional", headers={"Authorization": "Bearer x.y.z"})
        assert bad.status_code == 401  # a bad token is never silently anonymous
        missing = await client.get("/required")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "auth_required"
        assert (await client.get("/required", headers=auth)).json() == {"user": "u4"}

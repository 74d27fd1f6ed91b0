"""Access tokens carry the account's display name as ``name``, never the e-mail address:
signed by the real gateway, read back by the real verifier (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from sqlalchemy import update

from videoforge.gateway.accounts.models import Account
from videoforge.infra.auth.verifier import build_verifier
from videoforge.infra.db import session_scope

from .conftest import DEFAULT_PASSWORD, Gateway, GatewayFactory, make_settings


@pytest.fixture
async def gw(make_gateway: GatewayFactory, tmp_path: Path, database_url: str) -> Gateway:
    return await make_gateway(make_settings(tmp_path, database_url), with_gallery=False)


async def _signup(gw: Gateway, email: str, display_name: str | None) -> dict[str, object]:
    body: dict[str, str] = {"email": email, "password": DEFAULT_PASSWORD}
    if display_name is not None:
        body["display_name"] = display_name
    response = await gw.client.post("/api/auth/signup", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


async def test_access_token_name_is_the_display_name(
    gw: Gateway, tmp_path: Path, database_url: str
) -> None:
    data = await _signup(gw, "ada.lovelace@example.com", "  Ada   Lovelace ")
    token = str(data["access_token"])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["name"] == "Ada Lovelace"
    # A verifier in another process (key file only) sees the same name.
    verifier = build_verifier(make_settings(tmp_path, database_url))
    try:
        principal = await verifier.verify(token)
    finally:
        await verifier.aclose()
    assert principal.display_name == "Ada Lovelace"
    assert principal.public_name == "Ada Lovelace"
    assert "example.com" not in principal.display_name


async def test_without_display_name_the_name_is_neutral(gw: Gateway) -> None:
    data = await _signup(gw, "grace.hopper@example.com", None)
    user = data["user"]
    assert isinstance(user, dict)
    claims = jwt.decode(str(data["access_token"]), options={"verify_signature": False})
    assert claims["name"] == f"user-{str(user['id']).replace('-', '')[:6]}"
    assert "grace" not in claims["name"]
    assert "@" not in claims["name"]


async def test_an_email_shaped_display_name_is_not_used(gw: Gateway) -> None:
    data = await _signup(gw, "linus@example.com", "linus@example.com")
    claims = jwt.decode(str(data["access_token"]), options={"verify_signature": False})
    assert "@" not in claims["name"]
    assert claims["name"].startswith("user-")


async def test_a_changed_display_name_reaches_the_next_token(gw: Gateway) -> None:
    data = await _signup(gw, "mary@example.com", "Mary")
    user = data["user"]
    assert isinstance(user, dict)
    # No HTTP endpoint renames an account; an operator (or a later feature) edits the row.
    async with session_scope(gw.infra.sessions) as session:
        await session.execute(
            update(Account).where(Account.email == "mary@example.com").values(display_name="M. S.")
        )
    refreshed = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert claims["name"] == "M. S."

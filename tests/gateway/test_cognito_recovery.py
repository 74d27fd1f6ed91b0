"""Password reset, resend, profile edits and deletion for Cognito accounts, against
moto's Cognito server on loopback.

moto mails nothing. Its ForgotPassword returns the code it expects in the
``x-moto-forgot-password-confirmation-code`` response header, and checks only codes that
start with ``moto-confirmation-code:`` (any other code passes). So the tests get a code
by calling ForgotPassword themselves after the gateway did (it replaces the gateway's),
and test a wrong code in moto's own format. What cannot be tested here: that Cognito's
mail arrives, and its code expiry (moto has none).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .conftest import Gateway, GatewayFactory, make_settings
from .test_cognito import PASSWORD, _signup_confirmed, gw, pool  # noqa: F401 - fixtures

NEW_PASSWORD = "Purple-tractor-77-rain"


def _moto_code(pool: dict[str, Any], email: str) -> str:  # noqa: F811
    answer = pool["admin"].forgot_password(ClientId=pool["client_id"], Username=email)
    code = answer["ResponseMetadata"]["HTTPHeaders"]["x-moto-forgot-password-confirmation-code"]
    return str(code)


async def test_forgot_and_reset_with_the_code(gw: Gateway, pool: dict[str, Any]) -> None:  # noqa: F811
    await _signup_confirmed(gw, "cog-reset@example.com")
    forgot = await gw.client.post(
        "/api/auth/password/forgot", json={"email": "cog-reset@example.com"}
    )
    unknown = await gw.client.post("/api/auth/password/forgot", json={"email": "no@example.com"})
    assert forgot.status_code == unknown.status_code == 202
    assert forgot.json() == unknown.json()
    await gw.app.state.gateway.mail.drain()

    code = await asyncio.to_thread(_moto_code, pool, "cog-reset@example.com")
    wrong = await gw.client.post(
        "/api/auth/password/reset",
        json={
            "email": "cog-reset@example.com",
            "code": "moto-confirmation-code:000000",
            "password": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_code"
    weak = await gw.client.post(
        "/api/auth/password/reset",
        json={"email": "cog-reset@example.com", "code": code, "password": "password1"},
    )
    assert weak.status_code == 422
    reset = await gw.client.post(
        "/api/auth/password/reset",
        json={"email": "cog-reset@example.com", "code": code, "password": NEW_PASSWORD},
    )
    assert reset.status_code == 200, reset.text
    login = await gw.client.post(
        "/api/auth/login", json={"email": "cog-reset@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    # A local link token means nothing to Cognito.
    token_only = await gw.client.post(
        "/api/auth/password/reset", json={"token": "abc", "password": NEW_PASSWORD}
    )
    assert token_only.status_code == 400


async def test_display_name_change_and_refused_address_change(gw: Gateway) -> None:  # noqa: F811
    tokens = await _signup_confirmed(gw, "cog-name@example.com")
    auth = gw.bearer(tokens["access_token"])
    renamed = await gw.client.patch("/api/auth/me", json={"display_name": "Newname"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "Newname"
    assert (await gw.client.get("/api/auth/me", headers=auth)).json()["display_name"] == "Newname"
    moved = await gw.client.patch(
        "/api/auth/me",
        json={"email": "else@example.com", "current_password": PASSWORD},
        headers=auth,
    )
    assert moved.status_code == 422
    assert moved.json()["error"]["code"] == "email_change_unsupported"
    resend = await gw.client.post(
        "/api/auth/confirm/resend", json={"email": "cog-name@example.com"}
    )
    assert resend.status_code == 202


async def test_delete_needs_the_password_and_the_gallery(gw: Gateway) -> None:  # noqa: F811
    tokens = await _signup_confirmed(gw, "cog-del@example.com")
    auth = gw.bearer(tokens["access_token"])
    wrong = await gw.client.request(
        "DELETE", "/api/auth/me", json={"password": "Not-the-password-1"}, headers=auth
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    # This gateway has no gallery: nothing is deleted rather than leaving videos behind.
    no_gallery = await gw.client.request(
        "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=auth
    )
    assert no_gallery.status_code == 502
    login = await gw.client.post(
        "/api/auth/login", json={"email": "cog-del@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.fixture
async def gwg(
    make_gateway: GatewayFactory,
    tmp_path: Path,
    sqlite_url: str,
    moto_endpoint: str,
    pool: dict[str, Any],  # noqa: F811
) -> Gateway:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        COGNITO_USER_POOL_ID=pool["pool_id"],
        COGNITO_CLIENT_ID=pool["client_id"],
        AWS_ENDPOINT_URL=moto_endpoint,
        COGNITO_JWKS_URL=f"{moto_endpoint}/{pool['pool_id']}/.well-known/jwks.json",
    )
    return await make_gateway(settings)


async def test_delete_removes_the_videos_first_and_relays_the_pools_answer(gwg: Gateway) -> None:
    """The caller's videos go first (the gallery, as the caller), then the pool user
    (DeleteUser with the caller's access token). moto does not implement DeleteUser (it
    answers 500), so what is tested of the last step is that such an answer is a clear
    503 and that repeating the request is harmless; the pool user's removal itself is not
    testable here."""
    tokens = await _signup_confirmed(gwg, "cog-gone@example.com")
    auth = gwg.bearer(tokens["access_token"])
    me = (await gwg.client.get("/api/auth/me", headers=auth)).json()
    gwg.gallery.add_video(me["id"])
    other = gwg.gallery.add_video("someone-else")
    for _ in range(2):
        answer = await gwg.client.request(
            "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=auth
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "idp_unavailable"
        assert list(gwg.gallery.videos) == [other.id]
    assert gwg.gallery.hits["delete_my_videos"] == 2

"""Cognito accounts against moto's Cognito server on loopback: sign-up, confirm, log-in,
refresh, /me, group claim, password change, log-out, and tokens verified via the pool's
JWKS (issuer and JWKS URL configured the way a Cognito stand-in needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from mypy_boto3_cognito_idp.literals import ExplicitAuthFlowsTypeType

from .conftest import Gateway, GatewayFactory, make_settings

PASSWORD = "Sup3r-secret-pw"


@pytest.fixture
def pool(moto_endpoint: str, unique: str) -> dict[str, Any]:
    admin = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=moto_endpoint)
    pool_id = admin.create_user_pool(PoolName=f"vf-{unique}", UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]
    flows: list[ExplicitAuthFlowsTypeType] = [
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    ]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=flows
    )["UserPoolClient"]["ClientId"]
    other_client = admin.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=flows
    )["UserPoolClient"]["ClientId"]
    admin.create_group(GroupName="admin", UserPoolId=pool_id)
    return {"admin": admin, "pool_id": pool_id, "client_id": client_id, "other": other_client}


@pytest.fixture
async def gw(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, moto_endpoint: str, pool: Any
) -> Gateway:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        COGNITO_USER_POOL_ID=pool["pool_id"],
        COGNITO_CLIENT_ID=pool["client_id"],
        AWS_ENDPOINT_URL=moto_endpoint,
        # moto serves each pool's JWKS at /{pool_id}/.well-known/jwks.json and puts the
        # real AWS issuer (https://cognito-idp.{region}.amazonaws.com/{pool_id}) in tokens.
        COGNITO_JWKS_URL=f"{moto_endpoint}/{pool['pool_id']}/.well-known/jwks.json",
    )
    assert settings.resolved_cognito_issuer == (
        f"https://cognito-idp.us-east-1.amazonaws.com/{pool['pool_id']}"
    )
    return await make_gateway(settings, with_gallery=False)


async def _signup_confirmed(gw: Gateway, email: str) -> dict[str, Any]:
    signup = await gw.client.post(
        "/api/auth/signup", json={"email": email, "password": PASSWORD, "display_name": "Zed"}
    )
    assert signup.status_code == 201, signup.text
    confirm = await gw.client.post("/api/auth/confirm", json={"email": email, "code": "123456"})
    assert confirm.status_code == 200, confirm.text
    login = await gw.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    data: dict[str, Any] = login.json()
    return data


async def test_signup_confirm_login_refresh_me(gw: Gateway) -> None:
    signup = await gw.client.post(
        "/api/auth/signup", json={"email": "Ann@Example.com", "password": PASSWORD}
    )
    assert signup.status_code == 201
    body = signup.json()
    assert body["confirmation_required"] is True
    assert body["access_token"] is None
    sub = body["user"]["id"]

    early = await gw.client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert early.status_code == 403
    assert early.json()["error"]["code"] == "confirmation_required"

    confirm = await gw.client.post(
        "/api/auth/confirm", json={"email": "ann@example.com", "code": "123456"}
    )
    assert confirm.json() == {"ok": True}

    wrong = await gw.client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": "Wrong-password-1"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"

    login = await gw.client.post(
        "/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    tokens = login.json()
    assert tokens["user"]["id"] == sub
    assert tokens["expires_in"] > 0

    principal = await gw.infra.verifier.verify(tokens["access_token"])
    assert principal.user_id == sub
    assert not principal.is_admin

    me = await gw.client.get("/api/auth/me", headers=gw.bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    assert me.json()["id"] == sub

    refreshed = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] == tokens["refresh_token"]  # Cognito does not rotate
    assert (await gw.infra.verifier.verify(new["access_token"])).user_id == sub

    # Local-account endpoints that make no sense here answer clearly.
    assert (await gw.client.get("/.well-known/jwks.json")).status_code == 404


async def test_signup_with_a_registered_address_answers_like_a_new_one(gw: Gateway) -> None:
    owner = await _signup_confirmed(gw, "bo@example.com")
    fresh = await gw.client.post(
        "/api/auth/signup", json={"email": "newcomer@example.com", "password": PASSWORD}
    )
    taken = await gw.client.post(
        "/api/auth/signup", json={"email": "BO@example.com", "password": "An0ther-secret-pw"}
    )
    assert (taken.status_code, fresh.status_code) == (201, 201), taken.text
    a, b = taken.json(), fresh.json()
    assert a.keys() == b.keys()
    assert a["user"].keys() == b["user"].keys()
    assert a["confirmation_required"] is b["confirmation_required"] is True
    assert a["access_token"] is None
    assert a["refresh_token"] is None
    assert a["user"]["email"] == "bo@example.com"
    assert len(a["user"]["id"]) == len(b["user"]["id"])
    assert a["user"]["id"] != owner["user"]["id"]  # never the real account's id
    # Confirming answers like a wrong code would; the owner's password is untouched.
    unknown = await gw.client.post(
        "/api/auth/confirm", json={"email": "nobody@example.com", "code": "123456"}
    )
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"]["code"] == "invalid_code"
    stranger = await gw.client.post(
        "/api/auth/login", json={"email": "bo@example.com", "password": "An0ther-secret-pw"}
    )
    assert stranger.status_code == 401
    await _signup_login(gw, "bo@example.com")


async def test_group_claim_makes_an_admin(gw: Gateway, pool: dict[str, Any]) -> None:
    await _signup_confirmed(gw, "cy@example.com")
    pool["admin"].admin_add_user_to_group(
        UserPoolId=pool["pool_id"], Username="cy@example.com", GroupName="admin"
    )
    tokens = await _signup_login(gw, "cy@example.com")
    assert tokens["user"]["is_admin"] is True
    assert "admin" in tokens["user"]["groups"]
    principal = await gw.infra.verifier.verify(tokens["access_token"])
    assert principal.is_admin


async def _signup_login(gw: Gateway, email: str, password: str = PASSWORD) -> dict[str, Any]:
    login = await gw.client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    data: dict[str, Any] = login.json()
    return data


async def test_password_change_and_logout(gw: Gateway) -> None:
    tokens = await _signup_confirmed(gw, "di@example.com")
    changed = await gw.client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "N3w-secret-pw!"},
        headers=gw.bearer(tokens["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    old = await gw.client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert old.status_code == 401  # the change signed every session out
    assert (
        await gw.client.post(
            "/api/auth/login", json={"email": "di@example.com", "password": PASSWORD}
        )
    ).status_code == 401
    await _signup_login(gw, "di@example.com", "N3w-secret-pw!")

    out = await gw.client.post(
        "/api/auth/logout",
        json={"refresh_token": fresh["refresh_token"]},
        headers=gw.bearer(fresh["access_token"]),
    )
    assert out.status_code == 200
    after = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert after.status_code == 401


async def test_tokens_for_another_client_or_of_another_kind_are_refused(
    gw: Gateway, pool: dict[str, Any], moto_endpoint: str
) -> None:
    await _signup_confirmed(gw, "ed@example.com")
    public = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=moto_endpoint)
    other = public.initiate_auth(
        ClientId=pool["other"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ed@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    for token in (other["AccessToken"], other["IdToken"]):
        response = await gw.client.get("/api/auth/me", headers=gw.bearer(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_invalid"
    # Same signing key (moto uses one for every pool), another pool: wrong issuer.
    admin = pool["admin"]
    other_pool = admin.create_user_pool(PoolName="elsewhere", UsernameAttributes=["email"])
    other_pool_id = other_pool["UserPool"]["Id"]
    other_pool_client = admin.create_user_pool_client(
        UserPoolId=other_pool_id, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    admin.admin_create_user(UserPoolId=other_pool_id, Username="ed@example.com")
    admin.admin_set_user_password(
        UserPoolId=other_pool_id, Username="ed@example.com", Password=PASSWORD, Permanent=True
    )
    foreign = public.initiate_auth(
        ClientId=other_pool_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ed@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    response = await gw.client.get("/api/jobs", headers=gw.bearer(foreign))
    assert response.status_code == 401


async def test_weak_passwords_are_refused_before_cognito_sees_them(
    gw: Gateway, pool: dict[str, Any]
) -> None:
    # Both satisfy Cognito's own policy (length, cases, digits, symbols).
    for password, reason in (("Password1!", "common"), ("Nora-2024-xyz!", "contains_email")):
        response = await gw.client.post(
            "/api/auth/signup", json={"email": "nora@example.com", "password": password}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "weak_password"
        assert response.json()["error"]["details"] == {"reason": reason}
    assert pool["admin"].list_users(UserPoolId=pool["pool_id"])["Users"] == []


async def test_password_change_refuses_a_common_password(gw: Gateway) -> None:
    tokens = await _signup_confirmed(gw, "ola@example.com")
    response = await gw.client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "Password123!"},
        headers=gw.bearer(tokens["access_token"]),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == {"reason": "common"}
    await _signup_login(gw, "ola@example.com")  # the old password still works

"""Local accounts over real HTTP on SQLite and PostgreSQL: sign-up, log-in, refresh
rotation, log-out, password change, rehash, admin group, /me, JWKS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import argon2
import pytest
from sqlalchemy import select

from videoforge.gateway.accounts.models import Account
from videoforge.gateway.accounts.policy import PasswordProblem, password_problem
from videoforge.gateway.deps import GatewayOptions
from videoforge.gateway.main import list_users, set_admin
from videoforge.infra.auth.verifier import build_verifier
from videoforge.infra.db import session_scope

from .conftest import CHEAP_HASHER, Gateway, GatewayFactory, make_settings


@pytest.fixture
async def gw(make_gateway: GatewayFactory, tmp_path: Path, database_url: str) -> Gateway:
    return await make_gateway(make_settings(tmp_path, database_url), with_gallery=False)


async def test_signup_logs_in_and_me_answers(gw: Gateway) -> None:
    data = await gw.signup("Alice@Example.COM ")
    assert data["user"]["email"] == "alice@example.com"
    assert data["confirmation_required"] is False
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == gw.settings.access_token_ttl
    me = await gw.client.get("/api/auth/me", headers=gw.bearer(data["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "id": data["user"]["id"],
        "email": "alice@example.com",
        "display_name": None,
        "groups": [],
        "is_admin": False,
        "pending_email": None,
        # The fake gallery has no usage endpoint: /me degrades to unknown, not an error.
        "storage_used_bytes": None,
        "storage_quota_bytes": None,
    }
    async with session_scope(gw.infra.sessions) as session:
        account = (await session.execute(select(Account))).scalar_one()
    assert account.password_hash.startswith("$argon2id$")
    assert "correct horse" not in account.password_hash


async def test_signup_rejects_duplicates_weak_passwords_and_bad_emails(gw: Gateway) -> None:
    await gw.signup("bob@example.com")
    dup = await gw.client.post(
        "/api/auth/signup", json={"email": "BOB@example.com", "password": "another pass 9"}
    )
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "email_taken"
    weak = await gw.client.post(
        "/api/auth/signup", json={"email": "carol@example.com", "password": "short"}
    )
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "weak_password"
    bad = await gw.client.post(
        "/api/auth/signup", json={"email": "not-an-email", "password": "long enough 1"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_email"


async def test_login_checks_password_and_unknown_users_alike(gw: Gateway) -> None:
    await gw.signup("dan@example.com", "quiet lantern 42")
    ok = await gw.client.post(
        "/api/auth/login", json={"email": "DAN@example.com", "password": "quiet lantern 42"}
    )
    assert ok.status_code == 200
    assert ok.json()["access_token"]
    for body in (
        {"email": "dan@example.com", "password": "wrong password"},
        {"email": "nobody@example.com", "password": "quiet lantern 42"},
    ):
        response = await gw.client.post("/api/auth/login", json=body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_ends_every_session(gw: Gateway) -> None:
    first = await gw.signup("erin@example.com")
    r1 = await gw.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r1.status_code == 200
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await gw.client.get("/api/auth/me", headers=gw.bearer(second["access_token"]))
    assert me.status_code == 200
    # Replaying the used token: refused, and the family is revoked (the new one too).
    replay = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_revoked"
    after = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 401


async def test_access_token_is_not_a_refresh_token(gw: Gateway) -> None:
    data = await gw.signup("fay@example.com")
    response = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": data["access_token"]}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


async def test_logout_revokes_the_refresh_token(gw: Gateway) -> None:
    data = await gw.signup("gus@example.com")
    other = (
        await gw.client.post(
            "/api/auth/login", json={"email": "gus@example.com", "password": "correct horse 1"}
        )
    ).json()
    out = await gw.client.post(
        "/api/auth/logout",
        json={"refresh_token": data["refresh_token"]},
        headers=gw.bearer(data["access_token"]),
    )
    assert out.status_code == 200
    assert out.json() == {"ok": True}
    bodyless = await gw.client.post("/api/auth/logout")
    assert bodyless.status_code == 200  # nothing to revoke, nothing to fail
    refused = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert refused.status_code == 401
    # Another device's session is untouched by a single log-out.
    still = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert still.status_code == 200


async def test_password_change_revokes_sessions_and_swaps_password(gw: Gateway) -> None:
    data = await gw.signup("hal@example.com", "old password 1")
    wrong = await gw.client.post(
        "/api/auth/password",
        json={"current_password": "not it at all", "new_password": "new password 2"},
        headers=gw.bearer(data["access_token"]),
    )
    assert wrong.status_code == 401
    changed = await gw.client.post(
        "/api/auth/password",
        json={"current_password": "old password 1", "new_password": "new password 2"},
        headers=gw.bearer(data["access_token"]),
    )
    assert changed.status_code == 200
    assert changed.json()["refresh_token"]
    old_refresh = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert old_refresh.status_code == 401
    old_login = await gw.client.post(
        "/api/auth/login", json={"email": "hal@example.com", "password": "old password 1"}
    )
    assert old_login.status_code == 401
    new_login = await gw.client.post(
        "/api/auth/login", json={"email": "hal@example.com", "password": "new password 2"}
    )
    assert new_login.status_code == 200
    new_refresh = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": changed.json()["refresh_token"]}
    )
    assert new_refresh.status_code == 200


async def test_password_change_requires_auth(gw: Gateway) -> None:
    response = await gw.client.post(
        "/api/auth/password", json={"current_password": "x", "new_password": "y" * 9}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth_required"


async def test_login_rehashes_when_parameters_change(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    old = await make_gateway(settings, with_gallery=False)
    await old.signup("ivy@example.com", "amber orchard 7")
    async with session_scope(old.infra.sessions) as session:
        before = (await session.execute(select(Account))).scalar_one().password_hash
    assert argon2.extract_parameters(before).memory_cost == CHEAP_HASHER.memory_cost

    stronger = argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    new = await make_gateway(
        settings, with_gallery=False, options=GatewayOptions(password_hasher=stronger)
    )
    login = await new.client.post(
        "/api/auth/login", json={"email": "ivy@example.com", "password": "amber orchard 7"}
    )
    assert login.status_code == 200
    async with session_scope(new.infra.sessions) as session:
        after = (await session.execute(select(Account))).scalar_one().password_hash
    params = argon2.extract_parameters(after)
    assert (params.time_cost, params.memory_cost) == (2, 2048)
    assert stronger.verify(after, "amber orchard 7")
    # Logging in again with the same parameters does not rehash.
    again = await new.client.post(
        "/api/auth/login", json={"email": "ivy@example.com", "password": "amber orchard 7"}
    )
    assert again.status_code == 200
    async with session_scope(new.infra.sessions) as session:
        assert (await session.execute(select(Account))).scalar_one().password_hash == after


async def test_admin_group_from_the_command_line(gw: Gateway) -> None:
    await gw.signup("jo@example.com")
    assert await asyncio.to_thread(set_admin, gw.settings, "JO@example.com", True) is True
    assert await asyncio.to_thread(set_admin, gw.settings, "nobody@example.com", True) is False
    login = (
        await gw.client.post(
            "/api/auth/login", json={"email": "jo@example.com", "password": "correct horse 1"}
        )
    ).json()
    assert login["user"]["is_admin"] is True
    principal = await gw.infra.verifier.verify(login["access_token"])
    assert principal.is_admin
    assert principal.groups == frozenset({"admin"})
    lines = await asyncio.to_thread(list_users, gw.settings)
    assert len(lines) == 1
    assert lines[0].split("\t")[:2] == ["jo@example.com", "admin"]
    # Revoking ends refreshes too, so the admin claim cannot be kept alive.
    assert await asyncio.to_thread(set_admin, gw.settings, "jo@example.com", False) is True
    refused = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    assert refused.status_code == 401
    relog = (
        await gw.client.post(
            "/api/auth/login", json={"email": "jo@example.com", "password": "correct horse 1"}
        )
    ).json()
    assert relog["user"]["is_admin"] is False


async def test_jwks_lets_another_service_verify(
    gw: Gateway, tmp_path: Path, database_url: str
) -> None:
    jwks = (await gw.client.get("/.well-known/jwks.json")).json()
    assert jwks == gw.issuer.jwks()
    assert jwks["keys"][0]["alg"] == "ES256"
    assert "d" not in jwks["keys"][0]  # never the private part
    data = await gw.signup("kim@example.com")
    # The gallery in the distributed setup: no key file, only the gateway's URL.
    remote = make_settings(tmp_path / "elsewhere", database_url, GATEWAY_URL=gw.url)
    verifier = build_verifier(remote)
    try:
        principal = await verifier.verify(data["access_token"])
    finally:
        await verifier.aclose()
    assert principal.user_id == data["user"]["id"]
    assert principal.username == "kim@example.com"


async def test_signing_key_is_kept_private_and_reused(gw: Gateway) -> None:
    path = gw.settings.data_dir / "keys" / "jwt-signing.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    from videoforge.gateway.accounts.tokens import TokenIssuer

    again = TokenIssuer.from_settings(gw.settings)
    assert again.kid == gw.issuer.kid


async def test_concurrent_signups_with_one_email(gw: Gateway) -> None:
    async def attempt() -> int:
        response = await gw.client.post(
            "/api/auth/signup", json={"email": "race@example.com", "password": "long enough 1"}
        )
        return response.status_code

    codes = sorted(await asyncio.gather(*(attempt() for _ in range(4))))
    assert codes == [201, 409, 409, 409]
    async with session_scope(gw.infra.sessions) as session:
        rows = (await session.execute(select(Account))).scalars().all()
    assert [a.email for a in rows] == ["race@example.com"]


# ------------------------------------------------------------------ password policy
@pytest.mark.parametrize(
    ("password", "email", "display_name", "problem"),
    [
        ("password", None, None, PasswordProblem.COMMON),
        ("12345678", None, None, PasswordProblem.COMMON),
        ("qwertyuiop", None, None, PasswordProblem.COMMON),
        ("Password1!", None, None, PasswordProblem.COMMON),
        ("P@ssw0rd", None, None, PasswordProblem.COMMON),
        ("aaaaaaaa", None, None, PasswordProblem.GUESSABLE),
        ("abcdefgh", None, None, PasswordProblem.GUESSABLE),
        ("jennifer", None, None, PasswordProblem.GUESSABLE),
        ("        x", None, None, PasswordProblem.GUESSABLE),
        ("short", None, None, PasswordProblem.TOO_SHORT),
        ("         ", None, None, PasswordProblem.TOO_SHORT),
        ("mo@example.com", "mo@example.com", None, PasswordProblem.CONTAINS_EMAIL),
        ("MO@Example.com 99!", "mo@example.com", None, PasswordProblem.CONTAINS_EMAIL),
        ("pat.riley rocks 9", "pat.riley@example.com", None, PasswordProblem.CONTAINS_EMAIL),
        ("PatRiley-rocks-9", "pat.riley@example.com", None, PasswordProblem.CONTAINS_EMAIL),
        ("I am Zed Zebra!", "z@example.com", "Zed Zebra", PasswordProblem.CONTAINS_NAME),
        ("zedzebra rules 7", "z@example.com", "Zed Zebra", PasswordProblem.CONTAINS_NAME),
        ("correct horse 1", None, None, None),
        ("correct horse 1", "pat@example.com", "Pat", None),
        # Too short to look for: "al" is in many good passwords.
        ("always amber tea 5", "al@example.com", "Al", None),
        ("x7#Kq9!vLm2$" * 80, None, None, None),  # long: only the start is scored
    ],
)
def test_password_problems(
    password: str, email: str | None, display_name: str | None, problem: PasswordProblem | None
) -> None:
    assert password_problem(password, email=email, display_name=display_name) is problem


def test_long_hostile_input_is_scored_only_on_its_first_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # l33t symbols make zxcvbn's matching explode with length: the longest password
    # allowed on the wire must reach it cut to PASSWORD_SCORED_CHARS, whatever follows.
    from zxcvbn import zxcvbn as real

    from videoforge.gateway.accounts import policy

    seen: list[str] = []

    def recording(password: str) -> object:
        seen.append(password)
        return real(password)

    monkeypatch.setattr(policy, "zxcvbn", recording)
    hostile = ("4@8({[<3691!|70$5+%2" * 60)[:1024]
    assert password_problem(hostile) is None
    assert seen == [hostile[: policy.PASSWORD_SCORED_CHARS]]


@pytest.mark.parametrize(
    ("password", "reason", "says"),
    [
        ("12345678", "common", "too common"),
        ("aaaaaaaa", "guessable", "too easy to guess"),
        ("qwertyuiop", "common", "too common"),
        ("leo@example.com", "contains_email", "e-mail address"),
        ("leo rides again 5", "contains_email", "e-mail address"),
        ("Marco Rossi 99", "contains_name", "display name"),
    ],
)
async def test_signup_refuses_weak_passwords_saying_why(
    gw: Gateway, password: str, reason: str, says: str
) -> None:
    response = await gw.client.post(
        "/api/auth/signup",
        json={"email": "leo@example.com", "password": password, "display_name": "Marco Rossi"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "weak_password"
    assert error["details"] == {"reason": reason}
    assert says in error["message"]
    assert password not in response.text
    async with session_scope(gw.infra.sessions) as session:
        assert (await session.execute(select(Account))).scalars().all() == []


async def test_password_change_refuses_weak_passwords(gw: Gateway) -> None:
    data = await gw.signup("max@example.com")
    for new_password, reason in (
        ("iloveyou", "common"),
        ("max is the best 1", "contains_email"),
    ):
        response = await gw.client.post(
            "/api/auth/password",
            json={"current_password": "correct horse 1", "new_password": new_password},
            headers=gw.bearer(data["access_token"]),
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "weak_password"
        assert response.json()["error"]["details"] == {"reason": reason}
    # Nothing changed: the old password still logs in, the session still refreshes.
    login = await gw.client.post(
        "/api/auth/login", json={"email": "max@example.com", "password": "correct horse 1"}
    )
    assert login.status_code == 200
    still = await gw.client.post("/api/auth/refresh", json={"refresh_token": data["refresh_token"]})
    assert still.status_code == 200


# ------------------------------------------------------- sign-up and registered addresses
async def test_signup_for_a_taken_address_hashes_too(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    """The 409 cannot be hidden (see ``LocalAccounts.signup``), but it must not come back
    sooner than a 201: the password is hashed either way (counted, not timed: a timing
    would only measure the machine's load)."""
    hasher = _CountingHasher(time_cost=1, memory_cost=8192, parallelism=1)
    gw = await make_gateway(
        make_settings(tmp_path, sqlite_url),
        with_gallery=False,
        options=GatewayOptions(password_hasher=hasher),
    )
    await gw.signup("taken@example.com")
    before = hasher.hashed
    created = await gw.client.post(
        "/api/auth/signup", json={"email": "new@example.com", "password": "long enough 1"}
    )
    assert created.status_code == 201, created.text
    assert hasher.hashed == before + 1
    taken = await gw.client.post(
        "/api/auth/signup", json={"email": "TAKEN@example.com", "password": "long enough 1"}
    )
    assert taken.status_code == 409, taken.text
    assert hasher.hashed == before + 2  # hashed although nothing was stored
    # A weak password is refused alike, taken address or not (checked before the lookup).
    for email in ("taken@example.com", "free@example.com"):
        weak = await gw.client.post(
            "/api/auth/signup", json={"email": email, "password": "password1"}
        )
        assert weak.status_code == 422
        assert weak.json()["error"]["code"] == "weak_password"


class _CountingHasher(argon2.PasswordHasher):
    hashed = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        type(self).hashed += 1
        return super().hash(password, salt=salt)

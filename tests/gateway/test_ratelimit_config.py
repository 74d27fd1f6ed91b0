"""Rate limits are configurable from the environment (``RATE_LIMITS``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from videoforge.gateway.ratelimit import Action, RateLimits, Rule
from videoforge.settings import SettingsError, load_settings

from .conftest import GatewayFactory, make_settings


def test_spec_overrides_only_the_named_actions(tmp_path: Path) -> None:
    settings = load_settings(
        VIDEOFORGE_DATA_DIR=tmp_path, RATE_LIMITS="login=60:2, view=30:-:5, import=90:9:-:3"
    )
    limits = RateLimits.from_settings(settings)
    assert limits.enabled
    assert limits.rules[Action.LOGIN] == Rule(window=60, per_ip=2, per_user=None)
    assert limits.rules[Action.VIEW] == Rule(window=30, per_ip=None, per_user=5)
    assert limits.rules[Action.IMPORT] == Rule(window=90, per_ip=9, per_user=None, per_user_ip=3)
    assert limits.rules[Action.SIGNUP] == RateLimits().rules[Action.SIGNUP]


def test_off_disables_and_unset_keeps_defaults(tmp_path: Path) -> None:
    assert not RateLimits.from_settings(
        load_settings(VIDEOFORGE_DATA_DIR=tmp_path, RATE_LIMITS="off")
    ).enabled
    assert RateLimits.from_settings(load_settings(VIDEOFORGE_DATA_DIR=tmp_path)) == RateLimits()


@pytest.mark.parametrize(
    "spec",
    [
        "login",
        "login=60",
        "logins=60:2",
        "login=60:2:3:4:5",
        "login=x:2",
        "login=0:2",
        "view=60:-1",
        "login=60:2:3:0",
    ],
)
def test_bad_spec_fails_naming_the_variable(tmp_path: Path, spec: str) -> None:
    with pytest.raises(SettingsError, match="RATE_LIMITS"):
        load_settings(VIDEOFORGE_DATA_DIR=tmp_path, RATE_LIMITS=spec)


async def test_gateway_enforces_limits_from_the_environment(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(make_settings(tmp_path, sqlite_url, RATE_LIMITS="login=60:2"))
    for i in range(2):
        response = await gw.client.post(
            "/api/auth/login", json={"email": f"x{i}@example.com", "password": "whatever1"}
        )
        assert response.status_code == 401
    limited = await gw.client.post(
        "/api/auth/login", json={"email": "y@example.com", "password": "whatever1"}
    )
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_per_account_and_address_limit_from_the_environment(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    gw = await make_gateway(
        make_settings(tmp_path, sqlite_url, RATE_LIMITS="login=60:100:-:2"), with_gallery=False
    )
    body = {"email": "pia@example.com", "password": "whatever1"}

    async def login(address: str) -> int:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(base_url=gw.url, transport=transport) as client:
            return (await client.post("/api/auth/login", json=body)).status_code

    assert [await login("127.0.0.2") for _ in range(3)] == [401, 401, 429]
    assert await login("127.0.0.3") == 401  # another address: not limited


def test_settings_know_every_rate_limited_action() -> None:
    """RATE_LIMITS is validated by settings (which cannot import the gateway): its list
    of action names must be exactly the gateway's actions."""
    from videoforge.settings import RATE_LIMIT_ACTIONS

    assert set(RATE_LIMIT_ACTIONS) == {action.value for action in Action}

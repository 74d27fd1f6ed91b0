"""Rate limits are configurable from the environment (``RATE_LIMITS``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoforge.gateway.ratelimit import Action, RateLimits, Rule
from videoforge.settings import SettingsError, load_settings

from .conftest import GatewayFactory, make_settings


def test_spec_overrides_only_the_named_actions(tmp_path: Path) -> None:
    settings = load_settings(VIDEOFORGE_DATA_DIR=tmp_path, RATE_LIMITS="login=60:2, view=30:-:5")
    limits = RateLimits.from_settings(settings)
    assert limits.enabled
    assert limits.rules[Action.LOGIN] == Rule(window=60, per_ip=2, per_user=None)
    assert limits.rules[Action.VIEW] == Rule(window=30, per_ip=None, per_user=5)
    assert limits.rules[Action.SIGNUP] == RateLimits().rules[Action.SIGNUP]


def test_off_disables_and_unset_keeps_defaults(tmp_path: Path) -> None:
    assert not RateLimits.from_settings(
        load_settings(VIDEOFORGE_DATA_DIR=tmp_path, RATE_LIMITS="off")
    ).enabled
    assert RateLimits.from_settings(load_settings(VIDEOFORGE_DATA_DIR=tmp_path)) == RateLimits()


@pytest.mark.parametrize(
    "spec",
    ["login", "login=60", "logins=60:2", "login=60:2:3:4", "login=x:2", "login=0:2", "view=60:-1"],
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


def test_settings_know_every_rate_limited_action() -> None:
    """RATE_LIMITS is validated by settings (which cannot import the gateway): its list
    of action names must be exactly the gateway's actions."""
    from videoforge.settings import RATE_LIMIT_ACTIONS

    assert set(RATE_LIMIT_ACTIONS) == {action.value for action in Action}

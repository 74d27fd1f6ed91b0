"""The Cognito Pre Token Generation handler (deploy/aws/cognito_triggers), run on the
events Cognito sends (version 2), and its name checked by the shared verifier's rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from videoforge.infra.auth.principal import clean_display_name

TRIGGERS = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "cognito_triggers"
HANDLER = TRIGGERS / "pre_token_generation.py"


@pytest.fixture(scope="module")
def trigger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pre_token_generation", HANDLER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pre_token_generation"] = module
    spec.loader.exec_module(module)
    return module


def _event(attributes: dict[str, str]) -> dict[str, Any]:
    """The shape of a V2_0 TokenGeneration_Authentication event (trimmed)."""
    return {
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "userPoolId": "eu-west-1_Example",
        "userName": "8f1c5c1e-0000-4000-8000-000000000001",
        "callerContext": {"clientId": "exampleclientid"},
        "request": {
            "userAttributes": {"sub": "8f1c5c1e", "email": "ana@example.org", **attributes},
            "groupConfiguration": {"groupsToOverride": []},
            "scopes": ["aws.cognito.signin.user.admin"],
        },
        "response": {"claimsAndScopeOverrideDetails": None},
    }


def test_the_name_goes_into_the_access_token(trigger: ModuleType) -> None:
    out = trigger.handler(_event({"name": "  Ana   Lima "}), None)
    details = out["response"]["claimsAndScopeOverrideDetails"]
    assert details["accessTokenGeneration"]["claimsToAddOrOverride"] == {"name": "Ana Lima"}
    assert details["idTokenGeneration"]["claimsToAddOrOverride"] == {"name": "Ana Lima"}
    assert out["request"] == _event({"name": "  Ana   Lima "})["request"]  # untouched


@pytest.mark.parametrize("name", [None, "", "   ", "ana@example.org", "Ana <ana@example.org>"])
def test_no_claim_without_a_showable_name(trigger: ModuleType, name: str | None) -> None:
    attributes = {} if name is None else {"name": name}
    out = trigger.handler(_event(attributes), None)
    assert out["response"]["claimsAndScopeOverrideDetails"] is None


def test_long_names_are_cut_like_the_gallery_cuts_them(trigger: ModuleType) -> None:
    name = "N" * 300
    claimed = trigger.handler(_event({"name": name}), None)["response"][
        "claimsAndScopeOverrideDetails"
    ]["accessTokenGeneration"]["claimsToAddOrOverride"]["name"]
    assert claimed == "N" * trigger.MAX_NAME
    assert clean_display_name(claimed) == claimed  # the verifier keeps it as it is

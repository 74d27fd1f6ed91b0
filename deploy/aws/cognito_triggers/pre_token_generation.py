"""Cognito Pre Token Generation trigger (event version 2): the user's display name in
the access token.

The gateway and the gallery authenticate with Cognito *access* tokens, which carry no
profile attributes. Without this trigger every Cognito user would show up as a neutral
``user-xxxxxx`` to others. With it, the ``name`` attribute given at sign-up becomes the
access token's ``name`` claim, which the shared verifier reads (``COGNITO_NAME_CLAIMS``).
Nothing else is added. An e-mail-shaped name is left out: addresses are never shown
to other people.

Standard library only: this file is deployed as the Lambda's whole code.
"""

from __future__ import annotations

import re
from typing import Any

#: The gallery stores display names of up to this many characters.
MAX_NAME = 100
_EMAIL_SHAPED = re.compile(r"[^@\s]+@[^@\s]+")


def display_name(attributes: dict[str, str]) -> str | None:
    """The name to publish, or None (missing, blank or shaped like an e-mail address)."""
    name = " ".join((attributes.get("name") or "").split())[:MAX_NAME]
    if not name or _EMAIL_SHAPED.search(name):
        return None
    return name


def handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    """Add ``name`` to the access token (and the ID token, which has it already)."""
    name = display_name(event.get("request", {}).get("userAttributes", {}))
    if name is not None:
        claims = {"claimsToAddOrOverride": {"name": name}}
        event.setdefault("response", {})["claimsAndScopeOverrideDetails"] = {
            "accessTokenGeneration": claims,
            "idTokenGeneration": claims,
        }
    return event

"""Webhook signatures, as Stripe's: ``VideoForge-Signature: t=<unix>,v1=<hex>``.

``v1`` is HMAC-SHA256, keyed with the endpoint's secret (the whole ``whsec_...``
string, as UTF-8), over ``"{t}.{body}"``: the timestamp is signed with the body, so a
receiver that refuses old timestamps (:data:`DEFAULT_TOLERANCE`) refuses replays.
:func:`verify` is what receivers do (docs/operations.md has it as a snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "VideoForge-Signature"
EVENT_ID_HEADER = "VideoForge-Event-Id"
EVENT_TYPE_HEADER = "VideoForge-Event-Type"
#: Seconds a receiver should accept a signature for (either side of its clock).
DEFAULT_TOLERANCE = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that says what the value is, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` of ``now``."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)

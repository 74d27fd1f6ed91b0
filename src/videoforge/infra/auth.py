"""Authentication shared by every service: the one JWT verifier and the request principal.

(Interface first; the verifier implementation is filled in by the auth work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: str
    username: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False

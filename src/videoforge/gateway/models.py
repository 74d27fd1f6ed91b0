"""Gateway tables: local accounts and their refresh tokens (owned by the gateway alone).

Only used with local accounts; with Cognito the user pool holds the accounts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from videoforge.infra.db import Base, TimestampMixin, utcnow


class RevokeReason(StrEnum):
    ROTATED = "rotated"  # traded for a new one by /refresh
    LOGOUT = "logout"
    PASSWORD = "password"  # noqa: S105 - a reason, not a secret: every session ends
    REUSE = "reuse"  # a rotated token was replayed: the whole account's sessions end
    ADMIN = "admin"  # the admin group was revoked


class Account(TimestampMixin, Base):
    """A local account. ``email`` is stored normalised (see ``accounts.normalise_email``)."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    # The one group local accounts can be in; granted from the command line.
    is_admin: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)


class RefreshToken(Base):
    """One issued refresh token (by its ``jti``): revoked on use, logout or password change."""

    __tablename__ = "account_refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Why it stopped working. Only a *rotated* token coming back is a sign of theft.
    revoked_reason: Mapped[RevokeReason | None] = mapped_column(
        Enum(
            RevokeReason,
            name="refresh_revoke_reason",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=True,
    )

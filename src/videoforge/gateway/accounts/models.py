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
    RESET = "reset"  # the password was reset by mail: whoever had a session loses it


class TokenPurpose(StrEnum):
    """What a mailed link does (:class:`AccountToken`)."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret
    CONFIRM_EMAIL = "confirm_email"  # the sign-up address
    CHANGE_EMAIL = "change_email"  # ``email`` becomes the account's address


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
    # True: the owner proved the address is theirs (a confirmation or reset link).
    # False: signed up while EMAIL_CONFIRMATION was on and not confirmed yet; log-in is
    # refused while the setting is on. None: never asked (older accounts, or signed up
    # with confirmation off), as PeerTube treats them: not locked out by turning it on.
    email_confirmed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


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


class AccountToken(Base):
    """A single-use link sent by mail. Only the SHA-256 of the token is stored, so a
    copy of the database does not hold working links."""

    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(
            TokenPurpose,
            name="account_token_purpose",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    #: The address the link was mailed to (for an address change: the new address).
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)

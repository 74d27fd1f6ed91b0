"""The accounts' wire format (pydantic v2), separate from their tables."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PASSWORD_MIN_LENGTH = 8
# Argon2 accepts any length, but hashing megabytes on request is a cheap denial of service.
PASSWORD_MAX_LENGTH = 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SignupRequest(_In):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    display_name: str | None = Field(None, max_length=100)


class LoginRequest(_In):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class ConfirmRequest(_In):
    """Cognito: ``email`` and the mailed ``code``. Local accounts: the link's ``token``."""

    email: str | None = Field(None, min_length=1, max_length=320)
    code: str | None = Field(None, min_length=1, max_length=64)
    token: str | None = Field(None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _one_kind(self) -> ConfirmRequest:
        if self.token is None and (self.email is None or self.code is None):
            raise ValueError("send either token, or email and code")
        return self


class RefreshRequest(_In):
    refresh_token: str = Field(min_length=1, max_length=16_384)


class LogoutRequest(_In):
    refresh_token: str | None = Field(None, max_length=16_384)


class PasswordChangeRequest(_In):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    new_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class UserRead(BaseModel):
    """The signed-in user as the client sees it (same shape for local and Cognito)."""

    id: str
    email: str | None = None
    display_name: str | None = None
    groups: list[str] = Field(default_factory=list)
    is_admin: bool = False
    #: An address change waiting for its confirmation link (local accounts).
    pending_email: str | None = None
    #: What the user's videos hold in storage, and their quota (null: none). Only
    #: ``GET``/``PATCH /api/auth/me`` fill them in (the gateway asks the gallery).
    storage_used_bytes: int | None = None
    storage_quota_bytes: int | None = None


class AuthResponse(BaseModel):
    """Answer of sign-up, confirm, log-in and refresh.

    Tokens are null only when ``confirmation_required`` (Cognito sign-up before the
    e-mailed code is confirmed).
    """

    user: UserRead
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int | None = None
    confirmation_required: bool = False
    #: How to confirm: ``link`` (a mailed link, local accounts) or ``code`` (Cognito).
    confirmation: str | None = None


class OkResponse(BaseModel):
    ok: bool = True


class EmailRequest(_In):
    """``/password/forgot`` and ``/confirm/resend``."""

    email: str = Field(min_length=1, max_length=320)


class PasswordResetRequest(_In):
    """Local accounts: the link's ``token``. Cognito: ``email`` and the mailed ``code``."""

    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    token: str | None = Field(None, min_length=1, max_length=256)
    email: str | None = Field(None, min_length=1, max_length=320)
    code: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self) -> PasswordResetRequest:
        if self.token is None and (self.email is None or self.code is None):
            raise ValueError("send either token, or email and code")
        return self


class MeUpdate(_In):
    """``PATCH /api/auth/me``: fields left out stay as they are. A new ``email`` needs
    ``current_password`` and takes effect once its confirmation link is used."""

    display_name: str | None = Field(None, max_length=100)
    email: str | None = Field(None, min_length=3, max_length=320)
    current_password: str | None = Field(None, min_length=1, max_length=PASSWORD_MAX_LENGTH)

    @field_validator("display_name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # Control characters (NUL above all: PostgreSQL refuses it in text) have no place
        # in a name shown to others.
        if value is not None and any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("must not contain control characters")
        return value


class AccountDeleteRequest(_In):
    """``DELETE /api/auth/me``: the current password, as confirmation."""

    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class AcceptedResponse(BaseModel):
    """A request that may send mail: the same answer whatever the address."""

    ok: bool = True
    message: str

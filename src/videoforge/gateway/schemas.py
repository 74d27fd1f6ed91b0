"""The gateway's wire format (pydantic v2), separate from its tables."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
    email: str = Field(min_length=1, max_length=320)
    code: str = Field(min_length=1, max_length=64)


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


class OkResponse(BaseModel):
    ok: bool = True


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, str]

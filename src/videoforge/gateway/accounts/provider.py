"""What the auth endpoints need from an identity provider: local accounts or Cognito,
chosen at start-up by ``AUTH_BACKEND`` (:mod:`.local`, :mod:`.cognito`)."""

from __future__ import annotations

from typing import Protocol

from videoforge.gateway.accounts.schemas import (
    AuthResponse,
    ConfirmRequest,
    LoginRequest,
    PasswordChangeRequest,
    SignupRequest,
    UserRead,
)
from videoforge.infra.auth.principal import Principal


class AuthProvider(Protocol):
    """What the auth endpoints need from an identity provider (local or Cognito)."""

    async def signup(self, data: SignupRequest, *, base_url: str = "") -> AuthResponse: ...

    async def confirm(self, data: ConfirmRequest, *, base_url: str = "") -> None: ...

    async def login(self, data: LoginRequest) -> AuthResponse: ...

    async def refresh(self, refresh_token: str) -> AuthResponse: ...

    async def logout(self, refresh_token: str | None, access_token: str | None) -> None: ...

    async def change_password(
        self, principal: Principal, access_token: str, data: PasswordChangeRequest
    ) -> AuthResponse: ...

    async def me(self, principal: Principal, access_token: str) -> UserRead: ...

"""A small async client for the Cognito user-pool API (sign-up, confirm, log-in, refresh).

These are Cognito's *public* client operations: they are authorised by the app client
id and the user's own tokens, not by AWS credentials, so requests are sent unsigned
(a gateway needs no IAM permissions for them). ``AWS_ENDPOINT_URL`` points the client at
a Cognito-compatible server (moto in tests). boto3 is blocking, so every call runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from videoforge.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient


class CognitoError(Exception):
    """A Cognito call failed; ``code`` is Cognito's error code (e.g. NotAuthorizedException)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CognitoTokens:
    access_token: str
    expires_in: int
    refresh_token: str | None
    id_token: str | None


class CognitoClient:
    """Async wrapper over boto3 ``cognito-idp`` for one user-pool app client."""

    def __init__(
        self,
        client_id: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        client: CognitoIdentityProviderClient | None = None,
    ) -> None:
        self.client_id = client_id
        self._client: CognitoIdentityProviderClient = client or boto3.client(
            "cognito-idp",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                signature_version=UNSIGNED,
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=15,
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CognitoClient:
        if not settings.cognito_client_id:
            raise RuntimeError("COGNITO_CLIENT_ID is not set")
        return cls(
            settings.cognito_client_id,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._client, operation)

        def call() -> dict[str, Any]:
            try:
                result: dict[str, Any] = method(**kwargs)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise CognitoError(
                    str(error.get("Code", "ClientError")), str(error.get("Message", ""))
                ) from None
            except BotoCoreError as exc:
                raise CognitoError("Unavailable", str(exc)) from None
            return result

        return await asyncio.to_thread(call)

    async def sign_up(
        self, email: str, password: str, *, display_name: str | None = None
    ) -> tuple[str, bool]:
        """Register; returns (the user's ``sub``, whether already confirmed)."""
        attributes = [{"Name": "email", "Value": email}]
        if display_name:
            attributes.append({"Name": "name", "Value": display_name})
        result = await self._call(
            "sign_up",
            ClientId=self.client_id,
            Username=email,
            Password=password,
            UserAttributes=attributes,
        )
        return str(result["UserSub"]), bool(result.get("UserConfirmed", False))

    async def confirm_sign_up(self, email: str, code: str) -> None:
        await self._call(
            "confirm_sign_up", ClientId=self.client_id, Username=email, ConfirmationCode=code
        )

    def _tokens(self, result: dict[str, Any], *, refresh_token: str | None) -> CognitoTokens:
        if "AuthenticationResult" not in result:
            # MFA, NEW_PASSWORD_REQUIRED, ...: flows this gateway does not drive.
            raise CognitoError(
                "ChallengeRequired", str(result.get("ChallengeName", "unknown challenge"))
            )
        auth = result["AuthenticationResult"]
        return CognitoTokens(
            access_token=str(auth["AccessToken"]),
            expires_in=int(auth.get("ExpiresIn", 3600)),
            refresh_token=str(auth.get("RefreshToken") or refresh_token or "") or None,
            id_token=auth.get("IdToken"),
        )

    async def password_auth(self, username: str, password: str) -> CognitoTokens:
        result = await self._call(
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        return self._tokens(result, refresh_token=None)

    async def refresh(self, refresh_token: str) -> CognitoTokens:
        result = await self._call(
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
        # Cognito does not rotate refresh tokens: the caller keeps the one it has.
        return self._tokens(result, refresh_token=refresh_token)

    async def get_user(self, access_token: str) -> dict[str, str]:
        """The user's attributes (``email``, ``name``, ``sub``, ...)."""
        result = await self._call("get_user", AccessToken=access_token)
        return {a["Name"]: a.get("Value", "") for a in result.get("UserAttributes", [])}

    async def change_password(self, access_token: str, previous: str, proposed: str) -> None:
        await self._call(
            "change_password",
            AccessToken=access_token,
            PreviousPassword=previous,
            ProposedPassword=proposed,
        )

    async def global_sign_out(self, access_token: str) -> None:
        await self._call("global_sign_out", AccessToken=access_token)

    async def revoke_token(self, refresh_token: str) -> None:
        await self._call("revoke_token", Token=refresh_token, ClientId=self.client_id)

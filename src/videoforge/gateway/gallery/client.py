"""The gateway's view of the gallery: HTTP calls made with the caller's own token.

The gateway never reads gallery tables. It asks the gallery, as the caller, for the
video (the gallery applies its own visibility rules and only shows ``s3_key`` to the
owner and admins), and creates the video of a URL import the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from videoforge.infra.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
)

log = structlog.get_logger("videoforge.gateway.gallery")


class UpstreamUnavailable(ServiceUnavailable):
    status_code = 502
    code = "upstream_unavailable"


@dataclass(frozen=True)
class GalleryVideo:
    """What the gateway needs to know about a video."""

    id: uuid.UUID
    user_id: str
    status: str
    s3_key: str | None
    title: str | None = None


@dataclass(frozen=True)
class PublicVideo:
    """What anyone may know about a public or unlisted video (embeds, link previews)."""

    id: uuid.UUID
    title: str
    description: str
    owner_name: str | None
    user_id: str
    visibility: str
    status: str
    width: int | None
    height: int | None
    duration: float | None
    thumbnail_url: str | None


def _public_video(data: Any) -> PublicVideo:
    def positive(value: Any) -> int | None:
        return int(value) if isinstance(value, int | float) and value > 0 else None

    duration = data.get("duration")
    return PublicVideo(
        id=uuid.UUID(str(data["id"])),
        title=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        owner_name=str(data["owner_name"]) if data.get("owner_name") else None,
        user_id=str(data["user_id"]),
        visibility=str(data["visibility"]),
        status=str(data["status"]),
        width=positive(data.get("width")),
        height=positive(data.get("height")),
        duration=float(duration) if isinstance(duration, int | float) else None,
        thumbnail_url=str(data["thumbnail_url"]) if data.get("thumbnail_url") else None,
    )


@dataclass(frozen=True)
class StorageUsage:
    used_bytes: int
    quota_bytes: int | None


# Gallery answers passed on to our client with the same status and code.
_RELAYED: dict[int, type[AppError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
}


def _video(data: Any) -> GalleryVideo:
    try:
        return GalleryVideo(
            id=uuid.UUID(str(data["id"])),
            user_id=str(data["user_id"]),
            status=str(data["status"]),
            s3_key=data.get("s3_key") or None,
            title=data.get("title"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamUnavailable("The gallery sent an answer we do not understand.") from None


def _relay(response: httpx.Response) -> AppError:
    """Turn a gallery error answer into one of ours (same status and code)."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "upstream_error", "The gallery refused the request."
    if response.status_code >= 500:
        return UpstreamUnavailable("The gallery failed to answer.")
    if response.status_code == 429:
        retry = response.headers.get("retry-after", "1")
        return TooManyRequests(message, retry_after=int(retry) if retry.isdigit() else 1)
    kind = _RELAYED.get(response.status_code, BadRequest)
    return kind(message, code=code)


class GalleryClient:
    """Calls to the gallery's HTTP API (``base_url`` like ``http://gallery:5000``)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    async def _request(
        self, method: str, path: str, *, token: str, json: Any = None, request_id: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            return await self.http.request(
                method, f"{self.base_url}{path}", headers=headers, json=json
            )
        except httpx.HTTPError as exc:
            log.warning("gallery_unreachable", path=path, error=repr(exc))
            raise UpstreamUnavailable("The gallery is not reachable right now.") from None

    async def get_video(
        self, video_id: uuid.UUID, *, token: str, request_id: str | None = None
    ) -> GalleryVideo:
        """The video as the caller may see it; ``video_not_found`` if they may not."""
        response = await self._request(
            "GET", f"/api/gallery/videos/{video_id}", token=token, request_id=request_id
        )
        if response.status_code == 404:
            raise NotFound("Video not found.", code="video_not_found")
        if response.status_code != 200:
            raise _relay(response)
        return _video(response.json())

    async def public_video(
        self, video_id: uuid.UUID, *, wait: float = 5.0, request_id: str | None = None
    ) -> PublicVideo | None:
        """The video as an anonymous viewer sees it (embeds, link previews): None when
        it is missing, private or hidden, which the gallery does not tell apart. Never
        the viewer's own token: what a page shows to every visitor must not depend on
        who fetched it first. ``wait`` bounds the whole call (seconds)."""
        headers = {"Accept": "application/json"}
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            response = await self.http.get(
                f"{self.base_url}/api/gallery/videos/{video_id}", headers=headers, timeout=wait
            )
        except httpx.HTTPError as exc:
            log.warning("gallery_unreachable", path="public_video", error=repr(exc))
            raise UpstreamUnavailable("The gallery is not reachable right now.") from None
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise _relay(response)
        try:
            return _public_video(response.json())
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamUnavailable("The gallery sent an answer we do not understand.") from None

    async def create_import(
        self,
        *,
        title: str,
        source_url: str,
        token: str,
        description: str | None = None,
        request_id: str | None = None,
    ) -> GalleryVideo:
        """Create the caller's video for a URL import (status ``uploaded``, no file yet)."""
        body: dict[str, Any] = {"title": title, "source_url": source_url}
        if description:
            body["description"] = description
        response = await self._request(
            "POST", "/api/gallery/videos", token=token, json=body, request_id=request_id
        )
        if response.status_code not in (200, 201):
            raise _relay(response)
        return _video(response.json())

    async def usage(self, *, token: str, request_id: str | None = None) -> StorageUsage:
        """What the caller's videos hold in storage, and their quota (None: no quota)."""
        response = await self._request(
            "GET", "/api/gallery/me/usage", token=token, request_id=request_id
        )
        if response.status_code != 200:
            raise _relay(response)
        try:
            data = response.json()
            quota = data.get("quota_bytes")
            return StorageUsage(
                used_bytes=int(data["used_bytes"]),
                quota_bytes=int(quota) if quota is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamUnavailable("The gallery sent an answer we do not understand.") from None

    async def delete_my_videos(self, *, token: str, request_id: str | None = None) -> int:
        """Delete every video of the caller (and, through the gallery's deletion outbox,
        their objects); returns how many. The gallery deletes only the token's owner's."""
        response = await self._request(
            "DELETE", "/api/gallery/me/videos", token=token, request_id=request_id
        )
        if response.status_code != 200:
            raise _relay(response)
        try:
            return int(response.json()["deleted"])
        except (KeyError, TypeError, ValueError):
            raise UpstreamUnavailable("The gallery sent an answer we do not understand.") from None

    async def ping(self) -> None:
        """Raise :class:`UpstreamUnavailable` unless the gallery's health check answers."""
        try:
            response = await self.http.get(f"{self.base_url}/health", timeout=5)
        except httpx.HTTPError:
            raise UpstreamUnavailable("The gallery is not reachable.") from None
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"The gallery is unhealthy ({response.status_code}).")

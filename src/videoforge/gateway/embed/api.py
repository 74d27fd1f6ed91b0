"""Embeds and link previews: ``/embed/{id}`` (the only page any site may
frame), the oEmbed provider ``/services/oembed``, ``/services/thumbnail/{id}`` (a
thumbnail URL that never expires) and the watch page with its Open Graph and Twitter
card tags rendered on the server, so previews work for crawlers that run no JavaScript.

Everything here asks the gallery as an anonymous viewer: what a page shows every visitor
(and what a crawler caches) must never depend on a session. Private, hidden and missing
videos look the same (the gallery answers 404 for all three), so nothing here tells
them apart either. Every URL is built from ``PUBLIC_URL`` (``public_base_url``).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from videoforge.gateway.deps import GatewayState, request_id
from videoforge.gateway.embed.options import EmbedOptions, aspect_of, fit, thumbnail_size
from videoforge.gateway.embed.pages import (
    author_url,
    embed_url,
    frameable_policy,
    iframe_html,
    render_embed,
    thumbnail_url,
    with_base_url,
    with_meta,
)
from videoforge.gateway.gallery.client import PublicVideo
from videoforge.infra.errors import AppError, BadRequest, NotFound, ServiceUnavailable
from videoforge.infra.forwarded import public_base_url

log = structlog.get_logger("videoforge.gateway.embed")

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
#: The only paths other sites may frame (``install_common(frameable_prefixes=...)``).
FRAMEABLE_PREFIXES = ("/embed/",)
MAX_URL_LENGTH = 2048
#: A link preview must not hold the page: without the gallery's answer in time the page
#: is the generic one (the web client still loads the video itself).
PREVIEW_TIMEOUT = 3.0


class FormatNotImplemented(AppError):
    """oEmbed: "the provider cannot return a response in the requested format"."""

    status_code = 501
    code = "format_not_supported"


def _base(request: Request, gw: GatewayState) -> str:
    return public_base_url(request, gw.settings.public_url).rstrip("/")


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


async def _public_video(
    request: Request, video_id: uuid.UUID, *, wait: float = 5.0
) -> PublicVideo | None:
    gw = _state(request)
    if gw.gallery is None:
        raise ServiceUnavailable("The gallery is not configured.", code="gallery_unavailable")
    return await gw.gallery.public_video(video_id, wait=wait, request_id=request_id(request))


def _video_id_of(url: str, base: str) -> uuid.UUID:
    """The id in one of our watch or embed URLs; 400 for what is no URL, 404 for one
    that is not ours."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 0x21 for c in url):
        raise BadRequest("url must be a watch page's URL.", code="invalid_url")
    try:
        parts = urlsplit(url)
        ours = urlsplit(base)
        port, our_port = parts.port, ours.port
    except ValueError:
        raise BadRequest("url must be a watch page's URL.", code="invalid_url") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise BadRequest("url must be an http(s) URL.", code="invalid_url")
    defaults = {"http": 80, "https": 443}
    same_origin = parts.hostname.lower() == (ours.hostname or "").lower() and (
        port or defaults[parts.scheme.lower()]
    ) == (our_port or defaults.get(ours.scheme.lower(), 0))
    prefix = ours.path.rstrip("/")
    path = parts.path
    if not same_origin or not path.startswith(prefix + "/"):
        raise NotFound("That URL is not a video of this site.", code="not_found")
    segments = path[len(prefix) :].strip("/").split("/")
    if len(segments) != 2 or segments[0] not in {"watch", "embed"}:
        raise NotFound("That URL is not a video of this site.", code="not_found")
    try:
        return uuid.UUID(segments[1])
    except ValueError:
        raise NotFound("No such video.", code="video_not_found") from None


def _dimension(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 0 < int(value) <= 100_000:
        raise BadRequest(f"{name} must be a positive whole number.", code="invalid_parameter")
    return int(value)


def build_router(content_security_policy: str) -> APIRouter:
    """The routes; ``content_security_policy`` is the web client's (the embed page's is
    the same but for who may frame it)."""
    router = APIRouter()
    embed_csp = frameable_policy(content_security_policy)

    # Not in /api/openapi.json: its contract is oembed.com's, whose 501 for an unsupported
    # format is exactly the 5xx the API document promises never to answer.
    @router.get("/services/oembed", include_in_schema=False)
    async def oembed(
        request: Request,
        url: Annotated[str | None, Query(description="A watch or embed page's URL.")] = None,
        maxwidth: Annotated[str | None, Query()] = None,
        maxheight: Annotated[str | None, Query()] = None,
        format: Annotated[str | None, Query()] = None,
    ) -> Response:
        """oEmbed (https://oembed.com) for a public or unlisted video: type ``video``
        with the embed iframe sized within ``maxwidth``/``maxheight`` at the video's
        aspect ratio. 404 for URLs not ours and for unknown or private videos, 501 for
        any format but JSON."""
        if format not in (None, "", "json"):
            raise FormatNotImplemented("Only format=json is offered.")
        if not url:
            raise BadRequest("url is required.", code="invalid_url")
        gw = _state(request)
        base = _base(request, gw)
        video_id = _video_id_of(url, base)
        max_w, max_h = _dimension("maxwidth", maxwidth), _dimension("maxheight", maxheight)
        video = await _public_video(request, video_id)
        if video is None:
            raise NotFound("No such video.", code="video_not_found")
        size = fit(aspect_of(video), max_w, max_h)
        title = video.title or "Untitled"
        body: dict[str, object] = {
            "type": "video",
            "version": "1.0",
            "title": title,
            "provider_name": gw.settings.site_name,
            "provider_url": f"{base}/",
            "html": iframe_html(embed_url(base, video.id), size, title),
            "width": size.width,
            "height": size.height,
        }
        if video.owner_name:
            body["author_name"] = video.owner_name
            body["author_url"] = author_url(base, video)
        thumb = thumbnail_size(video)
        # oEmbed: "the thumbnail must respect any maxwidth and maxheight"; we cannot
        # resize the stored still, so one that would not fit is left out.
        fits = (not max_w or thumb.width <= max_w) and (not max_h or thumb.height <= max_h)
        if video.thumbnail_url and fits:
            body["thumbnail_url"] = thumbnail_url(base, video.id)
            body["thumbnail_width"] = thumb.width
            body["thumbnail_height"] = thumb.height
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

    @router.get("/services/thumbnail/{video_id}", include_in_schema=False)
    async def thumbnail(request: Request, video_id: str) -> Response:
        """A redirect to a freshly signed thumbnail of a public or unlisted video: link
        previews keep this URL for days, a signed one expires in hours."""
        try:
            vid = uuid.UUID(video_id)
        except ValueError:
            raise NotFound("No such video.", code="video_not_found") from None
        video = await _public_video(request, vid)
        if video is None or not video.thumbnail_url:
            raise NotFound("This video has no thumbnail.", code="thumbnail_not_found")
        target = urljoin(_base(request, _state(request)) + "/", video.thumbnail_url)
        # Shorter than the signed URL's window (hours), so a cached redirect never
        # points at an expired signature.
        return RedirectResponse(
            target, status_code=302, headers={"Cache-Control": "public, max-age=600"}
        )

    @router.api_route("/embed/{video_id}", methods=["GET", "HEAD"], include_in_schema=False)
    async def embed(request: Request, video_id: str) -> Response:
        """The player alone, for other sites' iframes (``start``, ``autoplay``,
        ``muted``, ``loop``, ``controls``, ``title`` are read by embed.js)."""
        gw = _state(request)
        base = _base(request, gw)
        video: PublicVideo | None = None
        status = 200
        try:
            vid = uuid.UUID(video_id)
        except ValueError:
            status = 404
        else:
            try:
                video = await _public_video(request, vid)
            except AppError:
                # The gallery is down or refused (rate limit): no player, never a 500.
                status = 503
            else:
                status = 200 if video is not None else 404
        page = render_embed(
            base,
            video,
            gw.settings.site_name,
            EmbedOptions.from_query(request.query_params),
            unavailable=status == 503,
        )
        return HTMLResponse(
            page,
            status_code=status,
            headers={"Content-Security-Policy": embed_csp, "Cache-Control": "no-cache"},
        )

    @router.api_route("/watch/{video_id}", methods=["GET", "HEAD"], include_in_schema=False)
    async def watch_page(request: Request, video_id: str) -> Response:
        """The web client's page, with the video's link-preview tags when it is public or
        unlisted (the generic page otherwise; the client says what is wrong)."""
        gw = _state(request)
        base = _base(request, gw)
        video: PublicVideo | None = None
        try:
            vid = uuid.UUID(video_id)
        except ValueError:
            pass
        else:
            try:
                video = await _public_video(request, vid, wait=PREVIEW_TIMEOUT)
            except AppError:
                video = None  # the page without previews beats no page
        web_dir = Path(gw.options.web_dir) if gw.options.web_dir else WEB_DIR
        try:
            index = (web_dir / "index.html").read_text(encoding="utf-8")
        except OSError:
            raise NotFound("Not found.", code="not_found") from None
        page = index if video is None else with_meta(index, base, video, gw.settings.site_name)
        return HTMLResponse(with_base_url(page, base), headers={"Cache-Control": "no-cache"})

    return router

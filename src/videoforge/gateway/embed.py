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

import html
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urljoin, urlsplit

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from videoforge.gateway.deps import GatewayState, request_id
from videoforge.gateway.gallery_client import PublicVideo
from videoforge.infra.errors import AppError, BadRequest, NotFound, ServiceUnavailable
from videoforge.infra.forwarded import public_base_url

log = structlog.get_logger("videoforge.gateway.embed")

WEB_DIR = Path(__file__).resolve().parent / "web"
#: The only paths other sites may frame (``install_common(frameable_prefixes=...)``).
FRAMEABLE_PREFIXES = ("/embed/",)
#: oEmbed's default frame: a 16:9 or 4:3 video is 640 wide, a portrait one 640 tall.
DEFAULT_BOX = 640
DEFAULT_ASPECT = (16, 9)
#: The processor's thumbnails are at most this wide (processor.config.thumbnail_width).
THUMBNAIL_WIDTH = 640
MAX_URL_LENGTH = 2048
#: A link preview must not hold the page: without the gallery's answer in time the page
#: is the generic one (the web client still loads the video itself).
PREVIEW_TIMEOUT = 3.0
IFRAME_ALLOW = "autoplay; fullscreen; picture-in-picture"
DESCRIPTION_LENGTH = 200


class FormatNotImplemented(AppError):
    """oEmbed: "the provider cannot return a response in the requested format"."""

    status_code = 501
    code = "format_not_supported"


@dataclass(frozen=True)
class Size:
    width: int
    height: int


def aspect_of(video: PublicVideo) -> tuple[int, int]:
    """The video's own width:height when known, else 16:9."""
    if video.width and video.height:
        return video.width, video.height
    return DEFAULT_ASPECT


def fit(aspect: tuple[int, int], max_width: int | None, max_height: int | None) -> Size:
    """The largest frame of ``aspect`` within the default box and the given maxima."""
    aw, ah = aspect
    box_w = min(DEFAULT_BOX, max_width) if max_width else DEFAULT_BOX
    box_h = min(DEFAULT_BOX, max_height) if max_height else DEFAULT_BOX
    if not max_height and aw >= ah:
        # A landscape default is DEFAULT_BOX wide whatever its height (as YouTube's).
        box_h = math.ceil(box_w * ah / aw)
    scale = min(box_w / aw, box_h / ah)
    # Floors, so the frame never exceeds a maximum; never below one pixel.
    return Size(max(1, math.floor(aw * scale + 1e-9)), max(1, math.floor(ah * scale + 1e-9)))


_TIME = re.compile(r"(?:([0-9]{1,7})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,7})s)?")
MAX_START = 10**7


def parse_time(value: str | None) -> int:
    """``90``, ``90s``, ``1m30s``, ``1h2m3s`` as seconds (as web/share.js reads ``?t=``);
    anything else 0. Bounded before ``int()``: a 5,000-digit number is not a 500."""
    text = (value or "").strip().lower()
    if re.fullmatch(r"[0-9]{1,9}", text):
        return min(int(text), MAX_START)
    match = _TIME.fullmatch(text) if text else None
    if match is None:
        return 0
    h, m, sec = (int(g) if g else 0 for g in match.groups())
    return min(h * 3600 + m * 60 + sec, MAX_START)


@dataclass(frozen=True)
class EmbedOptions:
    """The embed's query parameters, as YouTube's embeds take them."""

    start: int = 0
    autoplay: bool = False
    muted: bool = False
    loop: bool = False
    controls: bool = True
    title: bool = True

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> EmbedOptions:
        def flag(name: str, default: bool) -> bool:
            value = query.get(name, "").strip().lower()
            if value in {"1", "true", "yes"}:
                return True
            if value in {"0", "false", "no"}:
                return False
            return default

        return cls(
            start=parse_time(query.get("start") or query.get("t")),
            autoplay=flag("autoplay", False),
            muted=flag("mute", False) or flag("muted", False),
            loop=flag("loop", False),
            controls=flag("controls", True),
            title=flag("title", True),
        )

    def data_attributes(self) -> str:
        """For embed.js: ``data-start="90" data-autoplay="1"`` and so on."""
        values = {
            "start": str(self.start),
            "autoplay": "1" if self.autoplay else "0",
            "muted": "1" if self.muted else "0",
            "loop": "1" if self.loop else "0",
            "controls": "1" if self.controls else "0",
            "title": "1" if self.title else "0",
        }
        return " ".join(f'data-{k}="{v}"' for k, v in values.items())


def _base(request: Request, gw: GatewayState) -> str:
    return public_base_url(request, gw.settings.public_url).rstrip("/")


def _watch_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/watch/{video_id}"


def _embed_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/embed/{video_id}"


def _thumbnail_url(base: str, video_id: uuid.UUID) -> str:
    return f"{base}/services/thumbnail/{video_id}"


def _author_url(base: str, video: PublicVideo) -> str:
    # The gallery's listing of one uploader (what the watch page's owner link opens).
    return f"{base}/?owner={quote(video.user_id, safe='')}"


def thumbnail_size(video: PublicVideo) -> Size:
    aw, ah = aspect_of(video)
    width = min(THUMBNAIL_WIDTH, video.width or THUMBNAIL_WIDTH)
    return Size(width, max(1, round(width * ah / aw)))


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


def iframe_html(src: str, size: Size, title: str) -> str:
    """The embed code: one iframe, every attribute value escaped."""
    e = html.escape
    return (
        f'<iframe src="{e(src)}" width="{size.width}" height="{size.height}" '
        f'title="{e(title)}" frameborder="0" allow="{IFRAME_ALLOW}" allowfullscreen></iframe>'
    )


def frameable_policy(policy: str) -> str:
    """The page's CSP with ``frame-ancestors *``: any site may embed the player."""
    kept = [d for d in policy.split("; ") if not d.startswith("frame-ancestors")]
    return "; ".join([*kept, "frame-ancestors *"])


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
            "html": iframe_html(_embed_url(base, video.id), size, title),
            "width": size.width,
            "height": size.height,
        }
        if video.owner_name:
            body["author_name"] = video.owner_name
            body["author_url"] = _author_url(base, video)
        thumb = thumbnail_size(video)
        # oEmbed: "the thumbnail must respect any maxwidth and maxheight"; we cannot
        # resize the stored still, so one that would not fit is left out.
        fits = (not max_w or thumb.width <= max_w) and (not max_h or thumb.height <= max_h)
        if video.thumbnail_url and fits:
            body["thumbnail_url"] = _thumbnail_url(base, video.id)
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


def _short(text: str, limit: int = DESCRIPTION_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def meta_tags(base: str, video: PublicVideo, site_name: str) -> list[tuple[str, str, str]]:
    """(attribute, name, content) of each Open Graph and Twitter card tag."""
    title = video.title or "Untitled"
    description = _short(video.description) or f"Watch {title} on {site_name}."
    embed = _embed_url(base, video.id)
    size = fit(aspect_of(video), None, None)
    tags: list[tuple[str, str, str]] = [
        ("property", "og:site_name", site_name),
        ("property", "og:type", "video.other"),
        ("property", "og:title", title),
        ("property", "og:description", description),
        ("property", "og:url", _watch_url(base, video.id)),
    ]
    if video.thumbnail_url:
        thumb = thumbnail_size(video)
        image = _thumbnail_url(base, video.id)
        tags += [
            ("property", "og:image", image),
            ("property", "og:image:width", str(thumb.width)),
            ("property", "og:image:height", str(thumb.height)),
        ]
    tags += [("property", "og:video", embed), ("property", "og:video:url", embed)]
    if embed.startswith("https:"):
        tags.append(("property", "og:video:secure_url", embed))
    tags += [
        ("property", "og:video:type", "text/html"),
        ("property", "og:video:width", str(size.width)),
        ("property", "og:video:height", str(size.height)),
        ("name", "twitter:card", "player"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", description),
        ("name", "twitter:player", embed),
        ("name", "twitter:player:width", str(size.width)),
        ("name", "twitter:player:height", str(size.height)),
    ]
    if video.thumbnail_url:
        tags.append(("name", "twitter:image", _thumbnail_url(base, video.id)))
    return tags


def with_meta(index: str, base: str, video: PublicVideo, site_name: str) -> str:
    """index.html with the video's title, description, preview tags and oEmbed link."""
    e = html.escape
    title = video.title or "Untitled"
    watch = _watch_url(base, video.id)
    oembed = f"{base}/services/oembed?url={quote(watch, safe='')}&format=json"
    lines = [
        f'<meta {attr}="{e(name)}" content="{e(content)}">'
        for attr, name, content in meta_tags(base, video, site_name)
    ]
    if video.visibility == "unlisted":
        # Shared by link, never listed: previews yes, search engines' indexes no.
        lines.append('<meta name="robots" content="noindex">')
    lines += [
        f'<link rel="canonical" href="{e(watch)}">',
        f'<link rel="alternate" type="application/json+oembed" href="{e(oembed)}" '
        f'title="{e(title)}">',
    ]
    block = "\n  ".join(lines)
    page = index.replace(
        "<title>VideoForge</title>", f"<title>{e(title)} · {e(site_name)}</title>", 1
    )
    description = _short(video.description)
    if description:
        start = page.find('<meta name="description"')
        end = page.find(">", start)
        if start != -1 and end != -1:
            page = (
                page[:start]
                + f'<meta name="description" content="{e(description)}">'
                + page[end + 1 :]
            )
    head_end = page.find("</head>")
    if head_end == -1:
        return page
    return page[:head_end] + "  " + block + "\n" + page[head_end:]


def with_base_url(page: str, base: str) -> str:
    """The page with the public address the share box builds its links from."""
    tag = f'<meta name="videoforge:base-url" content="{html.escape(base)}">'
    head_end = page.find("</head>")
    if head_end == -1:
        return page
    return page[:head_end] + "  " + tag + "\n" + page[head_end:]


def render_embed(
    base: str,
    video: PublicVideo | None,
    site_name: str,
    options: EmbedOptions | None = None,
    *,
    unavailable: bool = False,
) -> str:
    """The embed page: the player's shell (embed.js plays it) or a message."""
    e = html.escape
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        '<link rel="stylesheet" href="/embed.css">',
    ]
    if video is None or video.status != "ready":
        if unavailable:
            heading, text = (
                "Video unavailable",
                "Playback is unavailable right now. Try again later.",
            )
        elif video is None:
            # Private, hidden and missing are one answer for an anonymous viewer (the
            # gallery tells them apart for the owner only), so the message names both.
            heading, text = "Video unavailable", "This video is private or no longer available."
        elif video.status == "failed":
            heading, text = "Video unavailable", "This video could not be processed."
        else:
            heading, text = "Processing", "This video is still being processed. Try again soon."
        title = e(video.title or "Untitled") if video is not None else "Video unavailable"
        body = (
            f'<div class="embed embed--message" role="status" data-state="unavailable">'
            f'<p class="embed__heading">{e(heading)}</p><p class="embed__text">{e(text)}</p>'
            f'<a class="embed__brand" href="{e(base)}/" target="_blank" rel="noopener">'
            f"{e(site_name)}</a></div>"
        )
        return _page(head, f"{title} · {e(site_name)}", body)
    options = options or EmbedOptions()
    title = video.title or "Untitled"
    watch = _watch_url(base, video.id)
    # The title links to the watch page (in a new tab: the embedding page stays).
    title_link = (
        f'<a class="embed__title" href="{e(watch)}" target="_blank" rel="noopener">{e(title)}</a>'
        if options.title
        else ""
    )
    poster = f' poster="{e(_thumbnail_url(base, video.id))}"' if video.thumbnail_url else ""
    head.append('<script type="module" src="/embed.js"></script>')
    body = (
        f'<div class="embed" id="embed" data-video-id="{e(str(video.id))}" '
        f'data-watch-url="{e(watch)}" {options.data_attributes()}>'
        f'<video class="embed__video" playsinline preload="metadata"{poster} '
        f'aria-label="{e("Video: " + title)}"></video>'
        f"{title_link}"
        f'<p class="embed__notice" role="status" hidden></p>'
        "</div>"
    )
    return _page(head, f"{e(title)} · {e(site_name)}", body)


def _page(head: list[str], title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n'
        + "\n".join(head)
        + f"\n<title>{title}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )

"""The gateway's routes for the gallery's paths (``videoforge.paths``): distributed
setups give clients one origin, and every such request is streamed to the gallery as it
is (:mod:`videoforge.gateway.gallery.forwarding`). Gallery actions are rate-limited by the
gallery itself, once, whichever way a request arrives."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from videoforge.gateway.gallery.forwarding import GalleryProxy
from videoforge.infra.errors import NotFound
from videoforge.paths import GALLERY_PREFIXES, WEBHOOKS_PREFIX

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

router = APIRouter(include_in_schema=False)


async def gallery_proxy(request: Request) -> GalleryProxy | None:
    """The app's proxy (``GatewayState.proxy``), None when the gallery is served in this
    process. Read here rather than through :mod:`videoforge.gateway.deps`, whose state
    names this package's types: the gallery package stays below it. ``async`` although
    it awaits nothing: a plain ``def`` dependency runs in FastAPI's thread pool, a
    thread hop on every proxied request (15 % of the gateway's CPU on a listing)."""
    proxy: GalleryProxy | None = request.app.state.gateway.proxy
    return proxy


async def proxy_to_gallery(
    request: Request, proxy: GalleryProxy | None = Depends(gallery_proxy)
) -> Response:
    """Forwarded to the gallery."""
    if proxy is None:
        raise NotFound("Not found.", code="not_found")
    return await proxy.forward(request)


for _prefix in GALLERY_PREFIXES:
    router.add_api_route(f"{_prefix}/{{path:path}}", proxy_to_gallery, methods=PROXY_METHODS)
# A collection with no path below it (POST/GET /api/webhooks).
router.add_api_route(WEBHOOKS_PREFIX, proxy_to_gallery, methods=PROXY_METHODS)

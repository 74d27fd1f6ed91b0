"""The API Gateway app: accounts, jobs, live progress, rate limits, routing, the web client.

``create_app(settings, infra)`` uses the given infrastructure as-is (the embedded
all-in-one and tests build it); without it the app's lifespan builds it, checks that
the database is migrated, and closes it at shutdown.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import videoforge
from videoforge.gateway.accounts import account_api, auth_api
from videoforge.gateway.accounts.local import LocalAccounts
from videoforge.gateway.accounts.mail import MailOutbox, build_mailer
from videoforge.gateway.accounts.provider import AuthProvider
from videoforge.gateway.accounts.recovery import AccountMail, AccountRecovery
from videoforge.gateway.accounts.tokens import TokenIssuer
from videoforge.gateway.deps import GatewayOptions, GatewayState
from videoforge.gateway.embed import api as embed
from videoforge.gateway.gallery import proxy
from videoforge.gateway.gallery.client import GalleryClient
from videoforge.gateway.gallery.forwarding import GalleryProxy
from videoforge.gateway.jobs import api as jobs_api
from videoforge.gateway.jobs import stream
from videoforge.gateway.ratelimit import RateLimiter, RateLimits
from videoforge.infra import metrics
from videoforge.infra.errors import NotFound, error_body
from videoforge.infra.http import SECURITY_HEADERS, install_common, register_app_collector
from videoforge.infra.runtime import Infra, build_infra
from videoforge.jobs.service import count_by_status
from videoforge.migrations import check_migrated
from videoforge.settings import AuthBackend, Settings

log = structlog.get_logger("videoforge.gateway")

WEB_DIR = Path(__file__).resolve().parent / "web"
HLS_JS_RELATIVE = Path("node_modules") / "hls.js" / "dist" / "hls.min.js"
#: The watch page's player: shaka-player's UI build and its stylesheet (``npm ci``).
SHAKA_DIST = Path("node_modules") / "shaka-player" / "dist"
SHAKA_JS_RELATIVE = SHAKA_DIST / "shaka-player.ui.js"
SHAKA_CSS_RELATIVE = SHAKA_DIST / "controls.css"
#: controls.css names Roboto on fonts.gstatic.com; the page loads nothing from a CDN
#: (and its CSP would refuse it), so that rule is dropped and the system font is used.
_REMOTE_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*url\(\s*['\"]?https?:[^}]*\}")
#: Paths that are never the web client: an unknown one is a JSON 404, not index.html.
API_PREFIXES = ("api/", ".well-known/", "storage/", "vendor/", "services/", "health", "metrics")

#: The web client loads only its own scripts and styles; media, thumbnails and uploads
#: go to the object store, whose origin differs per deployment (S3, the local store),
#: hence ``*`` for media, images and connections. hls.js feeds MSE from blob: URLs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: *",
        "media-src 'self' blob: *",
        "connect-src 'self' *",
        "worker-src 'self' blob:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(settings: Settings) -> dict[str, str]:
    """Headers on every gateway response (a response that sets one itself wins)."""
    headers = dict(SECURITY_HEADERS)
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if settings.public_url and settings.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    return headers


ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[MutableMapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


class HSTSMiddleware:
    """HSTS on responses to https requests (behind a TLS-terminating proxy, uvicorn's
    proxy headers make the scheme https)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"strict-transport-security" for k, _ in headers):
                    headers.append((b"strict-transport-security", HSTS.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_hsts)


class WebClientFiles(StaticFiles):
    """The web client's files, with index.html for every other non-API path (SPA routes)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.startswith(API_PREFIXES) or path in {"api", "storage", "vendor"}:
            raise NotFound("Not found.", code="not_found")
        try:
            response = await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            last = path.rsplit("/", 1)[-1]
            if exc.status_code != 404 or "." in last:
                raise
            response = await super().get_response("index.html", scope)
        if path in {"", ".", "index.html"} or response.media_type == "text/html":
            # The page names its scripts; a stale cached page would load stale code.
            response.headers["Cache-Control"] = "no-cache"
        return response


def find_node_file(relative: Path, override: str | None = None) -> Path | None:
    """A file from ``npm ci`` (node_modules in the working directory or the repo root),
    or ``override`` when given."""
    candidates = []
    if override:
        candidates.append(Path(override))
    candidates.append(Path.cwd() / relative)
    candidates.append(Path(videoforge.__file__).resolve().parents[2] / relative)
    return next((c for c in candidates if c.is_file()), None)


def find_hls_js(options: GatewayOptions) -> Path | None:
    """hls.js from ``npm ci`` (node_modules in the working directory or the repo root)."""
    return find_node_file(HLS_JS_RELATIVE, options.hls_js_path)


def shaka_controls_css(path: Path) -> str:
    """shaka-player's controls.css without its remote web-font rule."""
    return _REMOTE_FONT_FACE.sub("", path.read_text(encoding="utf-8"))


def _build_state(
    settings: Settings,
    infra: Infra,
    options: GatewayOptions,
    gallery_client: GalleryClient | None,
    owned: list[httpx.AsyncClient],
) -> GatewayState:
    issuer: TokenIssuer | None = None
    accounts: AuthProvider
    recovery: AccountRecovery
    mailer = build_mailer(settings)
    mail = AccountMail(MailOutbox(mailer))
    if settings.auth_backend is AuthBackend.COGNITO:
        from videoforge.gateway.accounts.cognito import CognitoAccounts
        from videoforge.gateway.accounts.cognito_client import CognitoClient
        from videoforge.gateway.accounts.cognito_recovery import CognitoRecovery

        cognito = CognitoAccounts(CognitoClient.from_settings(settings), infra.verifier)
        accounts, recovery = cognito, CognitoRecovery(cognito, mail)
    else:
        from videoforge.gateway.accounts.local_recovery import LocalRecovery

        issuer = TokenIssuer.from_settings(settings, key=infra.signing_key)
        local = LocalAccounts(
            infra.sessions,
            issuer,
            hasher=options.password_hasher,
            admin_group=settings.admin_group,
            mail=mail,
            confirm_email=settings.confirms_email,
            confirm_ttl=settings.email_confirmation_ttl,
        )
        recovery = LocalRecovery(
            local,
            mail,
            reset_ttl=settings.password_reset_ttl,
            confirm_ttl=settings.email_confirmation_ttl,
        )
        accounts = local
        # A single-machine operator reads the mail there (reset links included).
        log.info(
            "account_mail",
            to=mailer.describe(),
            email_confirmation=settings.confirms_email,
        )
    gallery_proxy: GalleryProxy | None = None
    if settings.gallery_url:
        stream_http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=5, read=300, write=300, pool=10),
            follow_redirects=False,
        )
        owned.append(stream_http)
        gallery_proxy = GalleryProxy(settings.gallery_url, stream_http)
        if gallery_client is None:
            api_http = httpx.AsyncClient(timeout=15, follow_redirects=False)
            owned.append(api_http)
            gallery_client = GalleryClient(settings.gallery_url, api_http)
    return GatewayState(
        settings=settings,
        infra=infra,
        accounts=accounts,
        limiter=RateLimiter(infra.cache, options.rate_limits or RateLimits.from_settings(settings)),
        options=options,
        issuer=issuer,
        gallery=gallery_client,
        proxy=gallery_proxy,
        recovery=recovery,
        mail=mail,
    )


def create_app(
    settings: Settings,
    infra: Infra | None = None,
    *,
    gallery_client: GalleryClient | None = None,
    options: GatewayOptions | None = None,
) -> FastAPI:
    """The gateway's ASGI app. With ``infra`` everything is ready at once (no lifespan
    needed); without, the lifespan builds and closes it."""
    opts = options or GatewayOptions()
    owned: list[httpx.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built: Infra | None = None
        if infra is None:
            built = await build_infra(
                settings, with_signing_key=settings.auth_backend is AuthBackend.LOCAL
            )
            try:
                await check_migrated(built.engine)
            except Exception:
                await built.aclose()
                raise
            app.state.infra = built
            app.state.gateway = _build_state(settings, built, opts, gallery_client, owned)
        try:
            yield
        finally:
            state: GatewayState | None = getattr(app.state, "gateway", None)
            if state is not None and state.mail is not None:
                # Mail in flight gets a moment (lost otherwise: it can be asked for again).
                await state.mail.drain(seconds=4)
            for client in owned:
                await client.aclose()
            if built is not None:
                await built.aclose()

    app = FastAPI(
        title="VideoForge API Gateway",
        version=videoforge.__version__ if hasattr(videoforge, "__version__") else "0",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_common(
        app,
        service="gateway",
        settings=settings,
        security_headers=security_headers(settings),
        # Only the embed player may be framed (its own CSP says by whom: anyone).
        frameable_prefixes=embed.FRAMEABLE_PREFIXES,
    )
    app.add_middleware(HSTSMiddleware)

    async def _jobs_by_state() -> None:
        async with app.state.infra.sessions() as session:
            metrics.set_jobs_by_state(await count_by_status(session))

    register_app_collector(app, "jobs_by_state", _jobs_by_state)
    if infra is not None:
        app.state.infra = infra
        app.state.gateway = _build_state(settings, infra, opts, gallery_client, owned)

    app.include_router(auth_api.router)
    app.include_router(account_api.router)
    app.include_router(auth_api.well_known)
    app.include_router(stream.router)
    app.include_router(jobs_api.router)
    app.include_router(proxy.router)
    app.include_router(embed.build_router(CONTENT_SECURITY_POLICY))
    app.include_router(_health_router())
    _mount_web(app, opts)
    return app


class HealthResponse(BaseModel):
    status: str
    checks: dict[str, str]


def _health_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/health", response_model=HealthResponse)
    async def health(request: Request) -> Response:
        """Readiness: the database and the cache answer (and the gallery, when separate)."""
        state: GatewayState = request.app.state.gateway
        checks: dict[str, str] = {}
        try:
            async with state.infra.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await state.infra.cache.ping()
            checks["cache"] = "ok"
        except Exception as exc:
            checks["cache"] = f"error: {type(exc).__name__}"
        if state.settings.gallery_url and state.gallery is not None:
            try:
                await state.gallery.ping()
                checks["gallery"] = "ok"
            except Exception as exc:
                checks["gallery"] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        body = HealthResponse(status="ok" if healthy else "unhealthy", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)

    return router


def _mount_web(app: FastAPI, options: GatewayOptions) -> None:
    hls_missing = (
        "hls.js is not installed: run `npm ci` in the repository (it provides "
        "node_modules/hls.js/dist/hls.min.js)."
    )

    @app.get("/vendor/hls.min.js", include_in_schema=False)
    async def hls_js() -> Response:
        """hls.js for browsers without native HLS (installed by the set-up, not vendored)."""
        path = find_hls_js(options)
        if path is None:
            return JSONResponse(error_body("hls_js_missing", hls_missing), status_code=404)
        return FileResponse(
            path,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    shaka_missing = (
        "shaka-player is not installed: run `npm ci` in the repository (it provides "
        "node_modules/shaka-player/dist)."
    )
    vendor_cache = {"Cache-Control": "public, max-age=86400"}

    @app.get("/vendor/shaka-player.ui.js", include_in_schema=False)
    async def shaka_js() -> Response:
        """shaka-player with its UI: the watch page's player (installed, not vendored)."""
        path = find_node_file(SHAKA_JS_RELATIVE)
        if path is None:
            return JSONResponse(error_body("shaka_missing", shaka_missing), status_code=404)
        return FileResponse(path, media_type="text/javascript", headers=vendor_cache)

    @app.get("/vendor/shaka-controls.css", include_in_schema=False)
    async def shaka_css() -> Response:
        """shaka-player's UI stylesheet, without the remote font (see above)."""
        path = find_node_file(SHAKA_CSS_RELATIVE)
        if path is None:
            return JSONResponse(error_body("shaka_missing", shaka_missing), status_code=404)
        return Response(shaka_controls_css(path), media_type="text/css", headers=vendor_cache)

    web_dir = Path(options.web_dir) if options.web_dir else WEB_DIR
    app.mount("/", WebClientFiles(directory=web_dir, html=True, check_dir=False), name="web")

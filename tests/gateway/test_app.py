"""The app shell: security headers, web client hosting with SPA fallback, hls.js,
health, and the lifespan that builds infrastructure itself."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from videoforge.gateway.app import create_app
from videoforge.gateway.deps import GatewayOptions
from videoforge.migrations import NotMigrated

from .conftest import CHEAP_HASHER, Gateway, GatewayFactory, make_settings, serve


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>VideoForge</title>")
    (web / "js" / "app.js").write_text("console.log('hi');")
    return web


@pytest.fixture
async def gw(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, web_dir: Path
) -> Gateway:
    options = GatewayOptions(password_hasher=CHEAP_HASHER, web_dir=str(web_dir))
    return await make_gateway(make_settings(tmp_path, sqlite_url), options=options)


async def test_security_headers_everywhere(gw: Gateway) -> None:
    for path in ("/", "/api/jobs", "/health", "/.well-known/jwks.json", "/api/nope"):
        response = await gw.client.get(path)
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "media-src 'self' blob: *" in csp
        assert "object-src 'none'" in csp
        assert "strict-transport-security" not in headers  # plain http


async def test_hsts_when_public_url_is_https(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, PUBLIC_URL="https://videos.example.com")
    gw = await make_gateway(settings, with_gallery=False)
    response = await gw.client.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_from_settings(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, CORS_ORIGINS="https://app.example.com")
    gw = await make_gateway(settings, with_gallery=False)
    allowed = await gw.client.options(
        "/api/jobs",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = await gw.client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_web_client_and_spa_fallback(gw: Gateway) -> None:
    index = await gw.client.get("/")
    assert index.status_code == 200
    assert "<title>VideoForge</title>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    script = await gw.client.get("/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    for route in ("/watch/123", "/my-videos", "/login"):
        page = await gw.client.get(route)
        assert page.status_code == 200
        assert "<title>VideoForge</title>" in page.text
    missing_asset = await gw.client.get("/js/missing.js")
    assert missing_asset.status_code == 404
    for api in ("/api/nope", "/api/jobs/x/y/z", "/.well-known/other"):
        response = await gw.client.get(api)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    traversal = await gw.client.get("/..%2f..%2fetc/passwd")
    assert "root:" not in traversal.text


async def test_hls_js_is_served_or_missing_clearly(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str
) -> None:
    fake_hls = tmp_path / "hls.min.js"
    fake_hls.write_text("/* hls */")
    present = await make_gateway(
        make_settings(tmp_path / "a", sqlite_url),
        with_gallery=False,
        options=GatewayOptions(password_hasher=CHEAP_HASHER, hls_js_path=str(fake_hls)),
    )
    ok = await present.client.get("/vendor/hls.min.js")
    assert ok.status_code == 200
    assert ok.text == "/* hls */"
    assert "javascript" in ok.headers["content-type"]

    real = Path(__file__).resolve().parents[2] / "node_modules/hls.js/dist/hls.min.js"
    if real.is_file():  # installed by `npm ci`: found without configuration
        default = await make_gateway(make_settings(tmp_path / "b", sqlite_url), with_gallery=False)
        response = await default.client.get("/vendor/hls.min.js")
        assert response.status_code == 200
        assert len(response.content) == real.stat().st_size


async def test_hls_js_missing_is_a_clear_404(
    make_gateway: GatewayFactory, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videoforge.gateway import app as app_module

    monkeypatch.setattr(app_module, "find_hls_js", lambda options: None)
    gw = await make_gateway(make_settings(tmp_path, sqlite_url), with_gallery=False)
    response = await gw.client.get("/vendor/hls.min.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "hls_js_missing"
    assert "npm ci" in response.json()["error"]["message"]


async def test_health(gw: Gateway) -> None:
    response = await gw.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


async def test_lifespan_builds_infra_and_refuses_unmigrated_db(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    app = create_app(settings, options=GatewayOptions(password_hasher=CHEAP_HASHER))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        signup = await client.post(
            "/api/auth/signup", json={"email": "life@example.com", "password": "long enough 1"}
        )
        assert signup.status_code == 201
        me = await client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {signup.json()['access_token']}"}
        )
        assert me.status_code == 200
    assert (settings.data_dir / "keys" / "jwt-signing.pem").exists()

    empty = make_settings(tmp_path / "empty", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    unmigrated = create_app(empty)
    with pytest.raises(NotMigrated, match="videoforge migrate"):
        async with unmigrated.router.lifespan_context(unmigrated):
            pass


async def test_shaka_player_is_served_without_a_remote_font(gw: Gateway) -> None:
    """The player's script and stylesheet come from node_modules (``npm ci``); the
    stylesheet loses its fonts.gstatic.com rule, which the page's CSP would refuse."""
    dist = Path(__file__).resolve().parents[2] / "node_modules/shaka-player/dist"
    if not (dist / "shaka-player.ui.js").is_file():
        pytest.skip("npm ci has not installed shaka-player")
    script = await gw.client.get("/vendor/shaka-player.ui.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert len(script.content) == (dist / "shaka-player.ui.js").stat().st_size
    css = await gw.client.get("/vendor/shaka-controls.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "fonts.gstatic.com" in (dist / "controls.css").read_text()
    assert "fonts.gstatic.com" not in css.text
    assert "@font-face" not in css.text
    assert ".shaka-video-container" in css.text


async def test_shaka_player_missing_is_a_clear_404(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videoforge.gateway import app as app_module

    monkeypatch.setattr(app_module, "find_node_file", lambda relative, override=None: None)
    for path in ("/vendor/shaka-player.ui.js", "/vendor/shaka-controls.css"):
        response = await gw.client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "shaka_missing"
        assert "npm ci" in response.json()["error"]["message"]

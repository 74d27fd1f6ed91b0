"""Embeds and link previews over HTTP, no JavaScript: the oEmbed provider (sizes,
visibility, errors, escaping), the watch page's server-rendered Open Graph / Twitter
tags, the thumbnail redirect, and who may frame which page.

The real gallery app and the real gateway are served by uvicorn on loopback, sharing a
database; videos are written straight into the gallery's table (no processing needed
to know what a preview says).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gateway.embed.options import fit, parse_time
from videoforge.infra.db import session_scope, utcnow
from videoforge.infra.runtime import Infra, build_infra

from .conftest import CHEAP_HASHER, free_port, make_settings, serve

PUBLIC = "https://videos.example.org"
HOSTILE = '</title><script>alert("x")</script> & "quotes" \'too\''


@dataclass
class Site:
    client: httpx.AsyncClient
    infra: Infra

    async def add(
        self,
        *,
        title: str = "Harbour tour",
        visibility: Visibility = Visibility.PUBLIC,
        status: VideoStatus = VideoStatus.READY,
        width: int | None = 1280,
        height: int | None = 720,
        hidden: bool = False,
        description: str = "A boat trip.",
        thumbnail: bool = True,
        draft: bool = False,
        publish_at: datetime | None = None,
    ) -> uuid.UUID:
        video_id = uuid.uuid4()
        async with session_scope(self.infra.sessions) as session:
            session.add(
                GalleryVideo(
                    id=video_id,
                    user_id="owner-1",
                    owner_name="Ada <Lovelace>",
                    title=title,
                    description=description,
                    visibility=visibility,
                    status=status,
                    width=width,
                    height=height,
                    hidden=hidden,
                    draft=draft,
                    publish_at=publish_at,
                    thumbnail_key=f"outputs/{video_id}/thumb.jpg" if thumbnail else None,
                    renditions=[],
                )
            )
        return video_id


@pytest.fixture
async def site(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Site]:
    from videoforge.gallery.app import create_app as create_gallery
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.deps import GatewayOptions

    base = make_settings(tmp_path, sqlite_url, PUBLIC_URL=PUBLIC)
    infra = await build_infra(base, with_signing_key=True)
    try:
        async with serve(create_gallery(base, infra)) as gallery_url:
            settings = base.model_copy(update={"gallery_url": gallery_url})
            infra.settings = settings
            gateway = create_gateway(
                settings, infra, options=GatewayOptions(password_hasher=CHEAP_HASHER)
            )
            async with serve(gateway) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
                yield Site(c, infra)
    finally:
        await infra.aclose()


async def oembed(site: Site, url: str, **params: str) -> httpx.Response:
    return await site.client.get("/services/oembed", params={"url": url, **params})


class Head(HTMLParser):
    """The <meta>/<link> tags and the <title> of a page, as a crawler reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.title = ""
        self.scripts: list[dict[str, str]] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and "content" in a:
            self.meta[a.get("property") or a.get("name") or ""] = a["content"]
        elif tag == "link":
            self.links.append(a)
        elif tag == "script":
            self.scripts.append(a)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(page: str) -> Head:
    head = Head()
    head.feed(page)
    return head


# ---------------------------------------------------------------- pure decisions
@pytest.mark.parametrize(
    ("aspect", "max_w", "max_h", "expected"),
    [
        ((16, 9), None, None, (640, 360)),
        ((1280, 720), 320, None, (320, 180)),
        ((1280, 720), None, 90, (160, 90)),
        ((1280, 720), 1000, 1000, (640, 360)),
        ((1280, 720), 200, 200, (200, 112)),
        ((640, 480), None, None, (640, 480)),
        ((720, 1280), None, None, (360, 640)),
        ((720, 1280), 100, None, (100, 177)),
        ((1280, 720), 1, 1, (1, 1)),
    ],
)
def test_fit_keeps_the_aspect_within_the_maxima(
    aspect: tuple[int, int], max_w: int | None, max_h: int | None, expected: tuple[int, int]
) -> None:
    size = fit(aspect, max_w, max_h)
    assert (size.width, size.height) == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("1m30s", 90),
        ("1h2m3s", 3723),
        ("2m", 120),
        ("", 0),
        ("abc", 0),
        ("-5", 0),
        ("1m1m", 0),
        ("5x", 0),
        ("1.5", 0),
        ("٣", 0),
        ("1s1m", 0),
        ("9" * 5000, 0),
        ("9" * 5000 + "s", 0),
        ("99999999", 10**7),
    ],
)
def test_parse_time(value: str, seconds: int) -> None:
    assert parse_time(value) == seconds


# ---------------------------------------------------------------- oEmbed
async def test_oembed_for_a_public_video(site: Site) -> None:
    video_id = await site.add()
    response = await oembed(site, f"{PUBLIC}/watch/{video_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "video"
    assert body["version"] == "1.0"
    assert body["title"] == "Harbour tour"
    assert body["author_name"] == "Ada <Lovelace>"
    assert body["author_url"] == f"{PUBLIC}/?owner=owner-1"
    assert body["provider_name"] == "VideoForge"
    assert body["provider_url"] == f"{PUBLIC}/"
    assert (body["width"], body["height"]) == (640, 360)
    assert body["thumbnail_url"] == f"{PUBLIC}/services/thumbnail/{video_id}"
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (640, 360)
    frame = parse(body["html"])
    iframe = Frame()
    iframe.feed(body["html"])
    assert iframe.attrs["src"] == f"{PUBLIC}/embed/{video_id}"
    assert (iframe.attrs["width"], iframe.attrs["height"]) == ("640", "360")
    assert iframe.attrs["frameborder"] == "0"
    assert iframe.attrs["allow"] == "autoplay; fullscreen; picture-in-picture"
    assert "allowfullscreen" in iframe.attrs
    assert frame.scripts == []
    # The embed URL is a URL of ours too.
    again = await oembed(site, f"{PUBLIC}/embed/{video_id}?start=5", format="json")
    assert again.status_code == 200
    assert again.json()["title"] == "Harbour tour"


class Frame(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] = {}
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "iframe":
            self.attrs = {k: v or "" for k, v in attrs}


async def test_oembed_sizes_follow_maxwidth_and_maxheight(site: Site) -> None:
    wide = await site.add(width=1920, height=1080)
    portrait = await site.add(width=720, height=1280)
    unknown = await site.add(width=None, height=None)
    cases = [
        (wide, {"maxwidth": "320"}, (320, 180)),
        (wide, {"maxheight": "90"}, (160, 90)),
        (wide, {"maxwidth": "480", "maxheight": "100"}, (177, 100)),
        (portrait, {}, (360, 640)),
        (portrait, {"maxheight": "320"}, (180, 320)),
        (unknown, {"maxwidth": "400"}, (400, 225)),
    ]
    for video_id, params, (w, h) in cases:
        body = (await oembed(site, f"{PUBLIC}/watch/{video_id}", **params)).json()
        assert (body["width"], body["height"]) == (w, h), params
        iframe = Frame()
        iframe.feed(body["html"])
        assert (iframe.attrs["width"], iframe.attrs["height"]) == (str(w), str(h))
        # The spec: a thumbnail respects the maxima too (a 640 px still does not fit).
        assert ("thumbnail_url" in body) == (not params), params
    roomy = (await oembed(site, f"{PUBLIC}/watch/{wide}", maxwidth="800")).json()
    assert (roomy["thumbnail_width"], roomy["thumbnail_height"]) == (640, 360)


async def test_a_gallery_outage_is_never_a_500(tmp_path: Path, sqlite_url: str) -> None:
    from videoforge.gateway.app import create_app as create_gateway
    from videoforge.gateway.deps import GatewayOptions
    from videoforge.gateway.gallery.client import GalleryClient

    settings = make_settings(tmp_path, sqlite_url, PUBLIC_URL=PUBLIC)
    infra = await build_infra(settings, with_signing_key=True)
    try:
        async with httpx.AsyncClient() as http:
            # A port nothing listens on: every gallery call fails to connect.
            down = GalleryClient(f"http://127.0.0.1:{free_port()}", http)
            gateway = create_gateway(settings, infra, gallery_client=down, options=GatewayOptions())
            async with serve(gateway) as url, httpx.AsyncClient(base_url=url) as c:
                video_id = uuid.uuid4()
                page = await c.get(f"/watch/{video_id}")
                assert page.status_code == 200, "the page without previews"
                assert not any(k.startswith("og:") for k in parse(page.text).meta)
                embed = await c.get(f"/embed/{video_id}")
                assert embed.status_code == 503
                assert "Playback is unavailable right now" in embed.text
                answer = await c.get(
                    "/services/oembed", params={"url": f"{PUBLIC}/watch/{video_id}"}
                )
                assert answer.status_code == 502
                assert answer.json()["error"]["code"] == "upstream_unavailable"
                thumb = await c.get(f"/services/thumbnail/{video_id}")
                assert thumb.status_code == 502
    finally:
        await infra.aclose()


async def test_oembed_visibility(site: Site) -> None:
    unlisted = await site.add(visibility=Visibility.UNLISTED)
    private = await site.add(visibility=Visibility.PRIVATE)
    hidden = await site.add(hidden=True)
    assert (await oembed(site, f"{PUBLIC}/watch/{unlisted}")).status_code == 200
    for video_id in (private, hidden, uuid.uuid4()):
        response = await oembed(site, f"{PUBLIC}/watch/{video_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "video_not_found"


async def test_unpublished_videos_have_no_embed_preview_or_oembed(site: Site) -> None:
    # A public draft or a public video scheduled for tomorrow is, to the world, not there.
    draft = await site.add(draft=True, title="Not yet")
    scheduled = await site.add(publish_at=utcnow() + timedelta(days=1), title="Tomorrow")
    published = await site.add(publish_at=utcnow() - timedelta(minutes=1), title="Today")
    for video_id in (draft, scheduled):
        assert (await oembed(site, f"{PUBLIC}/watch/{video_id}")).status_code == 404
        embed = await site.client.get(f"/embed/{video_id}")
        assert embed.status_code == 404
        assert "<video" not in embed.text
        watch = await site.client.get(f"/watch/{video_id}")
        assert not any(k.startswith(("og:", "twitter:")) for k in parse(watch.text).meta)
        assert "Not yet" not in watch.text
        assert "Tomorrow" not in watch.text
    assert (await oembed(site, f"{PUBLIC}/watch/{published}")).status_code == 200
    assert parse((await site.client.get(f"/watch/{published}")).text).meta["og:title"] == "Today"


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("https://elsewhere.example.com/watch/{id}", 404, "not_found"),
        ("https://videos.example.org.evil.com/watch/{id}", 404, "not_found"),
        ("https://videos.example.org:8443/watch/{id}", 404, "not_found"),
        ("https://videos.example.org/my", 404, "not_found"),
        ("https://videos.example.org/watch/{id}/extra", 404, "not_found"),
        ("https://videos.example.org/watch/not-a-uuid", 404, "video_not_found"),
        ("javascript:alert(1)", 400, "invalid_url"),
        ("not a url", 400, "invalid_url"),
        ("https://[::1/watch/x", 400, "invalid_url"),
        ("https://videos.example.org:99999/watch/{id}", 400, "invalid_url"),
        ("", 400, "invalid_url"),
        ("https://videos.example.org/watch/" + "a" * 3000, 400, "invalid_url"),
    ],
)
async def test_oembed_refuses_urls_that_are_not_our_videos(
    site: Site, url: str, status: int, code: str
) -> None:
    video_id = await site.add()
    response = await oembed(site, url.replace("{id}", str(video_id)))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_oembed_format_and_bad_parameters(site: Site) -> None:
    video_id = await site.add()
    url = f"{PUBLIC}/watch/{video_id}"
    xml = await oembed(site, url, format="xml")
    assert xml.status_code == 501
    assert xml.json()["error"]["code"] == "format_not_supported"
    for bad in (
        {"maxwidth": "-1"},
        {"maxwidth": "0"},
        {"maxheight": "abc"},
        {"maxwidth": "1e3"},
        {"maxwidth": "9" * 5000},
        {"maxheight": "٣٠٠"},
    ):
        response = await oembed(site, url, **bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_parameter"
    missing = await site.client.get("/services/oembed")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "invalid_url"
    unknown = await site.client.get("/services/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_oembed_escapes_a_hostile_title(site: Site) -> None:
    video_id = await site.add(title=HOSTILE)
    body = (await oembed(site, f"{PUBLIC}/watch/{video_id}")).json()
    assert body["title"] == HOSTILE
    frame = Frame()
    frame.feed(body["html"])
    assert frame.tags == ["iframe"], "the title cannot open a tag"
    assert frame.attrs["title"] == HOSTILE
    assert "<script>" not in body["html"]


# ---------------------------------------------------------------- watch page tags
async def test_watch_page_carries_the_preview_tags(site: Site) -> None:
    video_id = await site.add(description="Boats,\n\nharbour & gulls.")
    response = await site.client.get(f"/watch/{video_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    head = parse(response.text)
    watch = f"{PUBLIC}/watch/{video_id}"
    embed = f"{PUBLIC}/embed/{video_id}"
    thumb = f"{PUBLIC}/services/thumbnail/{video_id}"
    m = head.meta
    assert m["og:title"] == "Harbour tour"
    assert m["og:description"] == "Boats, harbour & gulls."
    assert m["og:type"] == "video.other"
    assert m["og:url"] == watch
    assert m["og:image"] == thumb
    assert m["og:video"] == embed
    assert m["og:video:secure_url"] == embed
    assert m["og:video:type"] == "text/html"
    assert (m["og:video:width"], m["og:video:height"]) == ("640", "360")
    assert m["twitter:card"] == "player"
    assert m["twitter:player"] == embed
    assert (m["twitter:player:width"], m["twitter:player:height"]) == ("640", "360")
    assert m["twitter:title"] == "Harbour tour"
    assert m["twitter:description"] == "Boats, harbour & gulls."
    assert m["twitter:image"] == thumb
    assert head.title == "Harbour tour · VideoForge"
    assert m["videoforge:base-url"] == PUBLIC, "the share box's links start there"
    assert "robots" not in m, "a public video may be indexed"
    discovery = [link for link in head.links if link.get("type") == "application/json+oembed"]
    assert len(discovery) == 1
    href = urlsplit(discovery[0]["href"])
    assert f"{href.scheme}://{href.netloc}{href.path}" == f"{PUBLIC}/services/oembed"
    assert parse_qs(href.query)["url"] == [watch]
    # The discovered URL answers.
    found = await site.client.get(f"/services/oembed?{href.query}")
    assert found.status_code == 200
    # The web client is still the page (its scripts load as before).
    assert any(s.get("src") == "/app.js" for s in head.scripts)


async def test_watch_page_tags_escape_a_hostile_title(site: Site) -> None:
    video_id = await site.add(title=HOSTILE, description=HOSTILE)
    page = (await site.client.get(f"/watch/{video_id}")).text
    head = parse(page)
    assert head.meta["og:title"] == HOSTILE
    assert head.meta["twitter:title"] == HOSTILE
    assert head.meta["og:description"] == HOSTILE
    assert head.title == f"{HOSTILE} · VideoForge"
    # Only the client's own module script: the title opened no tag.
    assert [s.get("src") for s in head.scripts] == ["/app.js"]
    assert "<script>alert" not in page


async def test_unlisted_has_tags_private_and_missing_get_the_generic_page(site: Site) -> None:
    unlisted = await site.add(visibility=Visibility.UNLISTED, title="Secret-ish link")
    private = await site.add(visibility=Visibility.PRIVATE, title="Diary")
    hidden = await site.add(hidden=True, title="Removed by a moderator")
    unlisted_meta = parse((await site.client.get(f"/watch/{unlisted}")).text).meta
    assert unlisted_meta["og:title"] == "Secret-ish link"
    assert unlisted_meta["robots"] == "noindex", "previews yes, search indexes no"
    generic = (await site.client.get("/")).text
    for video_id in (str(private), str(hidden), str(uuid.uuid4()), "not-a-uuid"):
        response = await site.client.get(f"/watch/{video_id}")
        assert response.status_code == 200
        head = parse(response.text)
        assert not any(k.startswith(("og:", "twitter:")) for k in head.meta), video_id
        assert head.title == "VideoForge"
        base_tag = f'  <meta name="videoforge:base-url" content="{PUBLIC}">\n'
        assert response.text == generic.replace("</head>", base_tag + "</head>")
        assert "Diary" not in response.text


async def test_watch_page_without_a_thumbnail_has_no_image_tags(site: Site) -> None:
    video_id = await site.add(thumbnail=False, status=VideoStatus.PROCESSING)
    meta = parse((await site.client.get(f"/watch/{video_id}")).text).meta
    assert meta["og:title"] == "Harbour tour"
    assert "og:image" not in meta
    assert "twitter:image" not in meta
    body = (await oembed(site, f"{PUBLIC}/watch/{video_id}")).json()
    assert "thumbnail_url" not in body


async def test_thumbnail_route_redirects_to_a_fresh_signed_url(site: Site) -> None:
    video_id = await site.add()
    response = await site.client.get(f"/services/thumbnail/{video_id}")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{PUBLIC}/storage/")
    assert f"outputs/{video_id}/thumb.jpg" in location or quote(f"outputs/{video_id}") in location
    private = await site.add(visibility=Visibility.PRIVATE)
    for other in (str(private), str(uuid.uuid4()), "nope"):
        refused = await site.client.get(f"/services/thumbnail/{other}")
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] in {"video_not_found", "thumbnail_not_found"}


# ---------------------------------------------------------------- frames
async def test_only_the_embed_may_be_framed(site: Site) -> None:
    video_id = await site.add()
    embed = await site.client.get(f"/embed/{video_id}")
    assert embed.status_code == 200
    assert "x-frame-options" not in embed.headers
    csp = embed.headers["content-security-policy"]
    assert "frame-ancestors *" in csp
    assert "frame-ancestors 'none'" not in csp
    assert "script-src 'self'" in csp, "the rest of the page's policy is kept"
    for path in ("/", f"/watch/{video_id}", "/my", "/styles.css", "/services/oembed"):
        response = await site.client.get(path)
        assert response.headers.get("x-frame-options") == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path


async def test_embed_page_states(site: Site) -> None:
    public = await site.add(title=HOSTILE)
    unlisted = await site.add(visibility=Visibility.UNLISTED)
    private = await site.add(visibility=Visibility.PRIVATE)
    processing = await site.add(status=VideoStatus.PROCESSING)
    for shown in (public, unlisted):
        response = await site.client.get(f"/embed/{shown}")
        assert response.status_code == 200
        head = parse(response.text)
        assert [s.get("src") for s in head.scripts] == ["/embed.js"]
        assert "<video" in response.text
    assert parse((await site.client.get(f"/embed/{public}")).text).title == (
        f"{HOSTILE} · VideoForge"
    )
    for hidden in (str(private), str(uuid.uuid4()), "not-a-uuid"):
        response = await site.client.get(f"/embed/{hidden}")
        assert response.status_code == 404
        assert "This video is private or no longer available." in response.text
        assert parse(response.text).scripts == [], "no player is loaded"
        assert "<video" not in response.text
        assert "x-frame-options" not in response.headers
    options = await site.client.get(
        f"/embed/{public}",
        params={"start": "1m30s", "autoplay": "1", "controls": "0", "title": "0"},
    )
    assert 'data-start="90"' in options.text
    assert 'data-autoplay="1"' in options.text
    assert 'data-controls="0"' in options.text
    assert "embed__title" not in options.text, "title=0 leaves the title out"
    assert "embed__title" in (await site.client.get(f"/embed/{public}")).text
    huge = await site.client.get(f"/embed/{public}", params={"start": "9" * 5000})
    assert huge.status_code == 200
    assert 'data-start="0"' in huge.text
    waiting = await site.client.get(f"/embed/{processing}")
    assert "still being processed" in waiting.text
    assert "<video" not in waiting.text


async def test_links_come_from_public_url_never_from_the_client(site: Site) -> None:
    video_id = await site.add()
    spoof = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    page = await site.client.get(f"/watch/{video_id}", headers=spoof)
    meta = parse(page.text).meta
    assert meta["og:url"] == f"{PUBLIC}/watch/{video_id}"
    assert meta["og:video"] == f"{PUBLIC}/embed/{video_id}"
    assert "evil.example" not in page.text
    answer = await site.client.get(
        "/services/oembed", params={"url": f"{PUBLIC}/watch/{video_id}"}, headers=spoof
    )
    assert "evil.example" not in answer.text
    # A URL on the spoofed host is not one of ours.
    theirs = await site.client.get(
        "/services/oembed", params={"url": f"http://evil.example/watch/{video_id}"}, headers=spoof
    )
    assert theirs.status_code == 404


ODD = ["", "%00", "..%2F..%2Fetc", "\u202e", "9" * 5000, "'\"><script>", "%ZZ", "a/b"]


async def test_odd_input_is_never_a_500(site: Site) -> None:
    video_id = await site.add()
    watch = f"{PUBLIC}/watch/{video_id}"
    for odd in ODD:
        for path in (f"/embed/{odd}", f"/watch/{odd}", f"/services/thumbnail/{odd}"):
            response = await site.client.get(path)
            assert response.status_code < 500, (path, response.status_code)
        for params in (
            {"url": odd},
            {"url": watch, "maxwidth": odd},
            {"url": watch, "maxheight": odd},
            {"url": watch + odd},
            {"url": watch, "format": odd},
        ):
            response = await site.client.get("/services/oembed", params=params)
            if params.get("format") not in (None, "", "json"):
                assert response.status_code == 501, params  # oEmbed's "not that format"
            else:
                assert response.status_code < 500, (params, response.status_code)
            if response.status_code != 200:
                assert response.json()["error"]["code"], params
        embed = await site.client.get(
            f"/embed/{video_id}", params={k: odd for k in ("start", "autoplay", "controls")}
        )
        assert embed.status_code == 200

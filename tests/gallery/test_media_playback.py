"""Issue 12 through the gallery: a real pipeline's outputs, applied from its COMPLETED
event, served and signed (local store: signatures are really checked on fetch): HLS
with audio and subtitle groups, DASH, storyboard, chapters, and the owner's captions."""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import m3u8
import pytest
from m3u8.mixins import BasePathMixin

from videoforge.gallery.captions.chapters import description_chapters
from videoforge.gallery.captions.models import GalleryCaption
from videoforge.gallery.captions.service import parse_caption
from videoforge.gallery.events import apply_event
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gallery.playback import make_token
from videoforge.infra.db import session_scope
from videoforge.infra.errors import AppError
from videoforge.infra.runtime import Infra
from videoforge.messages import ChapterMessage, JobEvent, JobStatus
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import PipelineResult, process_file

from ..processor.media.test_media_outputs import make_source
from .conftest import SeedVideo, Users

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SRT = b"1\n00:00:00,500 --> 00:00:01,500\nOwner's <i>own</i> line\n"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> PipelineResult:
    root = tmp_path_factory.mktemp("gallery-media")
    config = ProcessingConfig(threads=1, preset="ultrafast")
    return asyncio.run(process_file(make_source(root), root / "job", config))


@pytest.fixture
async def processed(
    infra: Infra, users: Users, seed_video: SeedVideo, outputs: PipelineResult
) -> GalleryVideo:
    """A private video whose job produced ``outputs``, applied from the COMPLETED event."""
    video = await seed_video(
        users.owner_id, visibility=Visibility.PRIVATE, status=VideoStatus.PROCESSING
    )
    job = uuid.uuid4()
    prefix = f"outputs/{job}/"
    for output in outputs.outputs:
        await infra.storage.put_file(
            prefix + output.rel_key, output.path, content_type=output.content_type
        )
    event = JobEvent(
        job_id=job,
        video_id=video.id,
        user_id=video.user_id,
        seq=5,
        status=JobStatus.COMPLETED,
        at=datetime.now(UTC),
        duration=outputs.probe.duration,
        width=outputs.probe.width,
        height=outputs.probe.height,
        thumbnail_key=prefix + outputs.thumbnail,
        preview_key=prefix + outputs.preview,
        hls_master_key=prefix + outputs.master_playlist,
        metadata_key=prefix + outputs.metadata,
        renditions=[r.to_message(prefix) for r in outputs.renditions],
        dash_manifest_key=prefix + str(outputs.dash_manifest),
        audio_tracks=[a.to_message(prefix) for a in outputs.audio_tracks],
        subtitles=[s.to_message(prefix) for s in outputs.subtitles],
        chapters=[
            ChapterMessage(start=c.start, end=c.end, title=c.title) for c in outputs.probe.chapters
        ],
        chapters_key=prefix + str(outputs.chapters),
        storyboard_key=prefix + str(outputs.storyboard),
    )
    async with session_scope(infra.sessions) as session:
        await apply_event(session, event)
        fresh = await session.get(GalleryVideo, video.id, populate_existing=True)
    assert fresh is not None
    assert fresh.status is VideoStatus.READY
    return fresh


async def _stream(client: httpx.AsyncClient, video: GalleryVideo, headers: dict[str, str]) -> Any:
    r = await client.get(f"/api/gallery/stream/{video.id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _uri(item: BasePathMixin) -> str:
    """The URI of a playlist entry that must have one (the parser allows none)."""
    assert item.uri, item
    return item.uri


async def _fetch_ok(client: httpx.AsyncClient, url: str) -> bytes:
    got = await client.get(url)
    assert got.status_code == 200, (url, got.text[:200])
    return got.content


async def test_stream_response_lists_every_output(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo
) -> None:
    urls = await _stream(client, processed, users.owner)
    assert urls["dash"].endswith(
        f"/api/gallery/stream/{processed.id}/dash/manifest.mpd?token="
        + urls["hls"].split("token=")[1]
    )
    assert [(a["language"], a["default"]) for a in urls["audio_tracks"]] == [
        ("en", False),
        ("fr", True),
    ]
    assert [(c["language"], c["source"]) for c in urls["captions"]] == [
        ("en", "extracted"),
        ("fr", "extracted"),
    ]
    for caption in urls["captions"]:
        assert (await _fetch_ok(client, caption["url"])).startswith(b"WEBVTT")
    assert [c["title"] for c in urls["chapters"]] == ["Intro", "The main part"]
    chapters = (await _fetch_ok(client, urls["chapters_url"])).decode()
    assert "Intro" in chapters
    assert "-->" in chapters
    storyboard = (await _fetch_ok(client, urls["storyboard"])).decode()
    sprite = next(line for line in storyboard.splitlines() if "#xywh=" in line)
    url, fragment = sprite.split("#", 1)
    assert fragment == "xywh=0,0,160,120"
    assert (await _fetch_ok(client, url))[:2] == b"\xff\xd8"  # a signed JPEG sheet


async def test_master_playlist_groups_are_signed_and_playable(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo
) -> None:
    urls = await _stream(client, processed, users.owner)
    master_text = (await _fetch_ok(client, urls["hls"])).decode()
    master = m3u8.loads(master_text, uri=urls["hls"])
    types = sorted((m.type, m.language) for m in master.media)
    assert types == [("AUDIO", "en"), ("AUDIO", "fr"), ("SUBTITLES", "en"), ("SUBTITLES", "fr")]
    for media in master.media:
        media_url = urljoin(urls["hls"], _uri(media))
        playlist = m3u8.loads((await _fetch_ok(client, media_url)).decode(), uri=media_url)
        assert playlist.segments
        for segment in playlist.segments:
            assert "/storage/" in _uri(segment)  # a signed URL, not a key
            await _fetch_ok(client, urljoin(media_url, _uri(segment)))
    for variant in master.playlists:
        assert variant.stream_info.audio == "audio"
        assert variant.stream_info.subtitles == "subs"


async def test_dash_manifest_urls_are_all_signed(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo
) -> None:
    urls = await _stream(client, processed, users.owner)
    got = await client.get(urls["dash"])
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/dash+xml")
    root = ET.fromstring(got.text)  # noqa: S314 (the gallery's own answer)
    referenced = [
        element.get(attr) or ""
        for element in root.iter()
        for attr in ("sourceURL", "media")
        if element.get(attr)
    ] + [e.text or "" for e in root.iter(f"{{{NS['d']}}}BaseURL")]
    assert len(referenced) >= 2 * 3 + 2  # init + segment per video/audio set, two VTTs
    for url in referenced:
        assert "/storage/" in url
        await _fetch_ok(client, url)
    kinds = [s.get("contentType") for s in root.iter(f"{{{NS['d']}}}AdaptationSet")]
    assert kinds.count("audio") == 2
    assert kinds.count("text") == 2


async def test_owner_captions_upload_list_serve_and_delete(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo
) -> None:
    base = f"/api/gallery/videos/{processed.id}/captions"
    # Only the owner (or an admin) changes captions; a private video is 404 to others.
    assert (await client.put(f"{base}/de", content=SRT)).status_code == 404
    other = await client.put(f"{base}/de", content=SRT, headers=users.other)
    assert other.status_code == 404
    r = await client.put(
        f"{base}/de",
        params={"label": 'Deutsch "DE"'},
        content=SRT,
        headers={**users.owner, "Content-Type": "application/x-subrip"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "Deutsch DE"
    stored = (await _fetch_ok(client, r.json()["url"])).decode()
    assert stored == "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nOwner's own line\n\n"
    # Multipart, replacing the extracted French track.
    files = {"file": ("fr.vtt", b"WEBVTT\n\n00:01.000 --> 00:02.000\nCorrige\n", "text/vtt")}
    r = await client.put(
        f"{base}/FR", files=files, data={"label": "Français (corrigé)"}, headers=users.owner
    )
    assert r.status_code == 200, r.text
    listed = (await client.get(base, headers=users.owner)).json()["items"]
    assert [(c["language"], c["source"]) for c in listed] == [
        ("en", "extracted"),
        ("de", "uploaded"),
        ("fr", "uploaded"),
    ]
    assert (await client.get(base, headers=users.other)).status_code == 404

    urls = await _stream(client, processed, users.owner)
    master_text = (await _fetch_ok(client, urls["hls"])).decode()
    master = m3u8.loads(master_text, uri=urls["hls"])
    subs = {m.language: m for m in master.media if m.type == "SUBTITLES"}
    assert set(subs) == {"en", "de", "fr"}  # the extracted "fr" is replaced by "fr"
    caption_url = urljoin(urls["hls"], _uri(subs["de"]))
    playlist = m3u8.loads((await _fetch_ok(client, caption_url)).decode())
    assert (await _fetch_ok(client, _uri(playlist.segments[0]))).decode() == stored
    mpd = ET.fromstring((await _fetch_ok(client, urls["dash"])).decode())  # noqa: S314
    langs = [
        s.get("lang")
        for s in mpd.iter(f"{{{NS['d']}}}AdaptationSet")
        if s.get("contentType") == "text"
    ]
    assert sorted(lang or "" for lang in langs) == ["de", "en", "fr"]

    assert (await client.delete(f"{base}/de", headers=users.other)).status_code == 404
    assert (await client.delete(f"{base}/de", headers=users.owner)).status_code == 204
    assert (await client.delete(f"{base}/de", headers=users.owner)).status_code == 404
    listed = (await client.get(base, headers=users.owner)).json()["items"]
    assert [c["language"] for c in listed] == ["en", "fr"]


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b"1\n00:00:01,000 -> 00:00:02,000\nx\n", 422, "invalid_caption", "Line 2"),
        (b"1\n00:00:01,000 --> 00:00:0x,000\nx\n", 422, "invalid_caption", "Line 2"),
        (b"WEBVTT\n\n00:02.000 --> 00:01.000\nx\n\n", 422, "invalid_caption", "Line 3"),
        (b"ok\n\xff\xfe\n", 422, "invalid_caption", "Line 2"),
        (b"[Script Info]\nScriptType: v4.00+\n", 422, "invalid_caption", "SubRip"),
        (b"", 422, "invalid_caption", "empty"),
        (b"just some text\n", 422, "invalid_caption", "no cues"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\na --> b\n", 422, "invalid_caption", "Line 4"),
        (b"x" * (512 * 1024 + 1), 413, "caption_too_large", "512"),
    ],
)
async def test_bad_caption_files_are_clear_errors(
    client: httpx.AsyncClient,
    users: Users,
    processed: GalleryVideo,
    body: bytes,
    status: int,
    code: str,
    fragment: str,
) -> None:
    r = await client.put(
        f"/api/gallery/videos/{processed.id}/captions/en", content=body, headers=users.owner
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert fragment in r.json()["error"]["message"]


async def test_bad_language_and_type(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo
) -> None:
    base = f"/api/gallery/videos/{processed.id}/captions"
    r = await client.put(f"{base}/not a language", content=SRT, headers=users.owner)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_language"
    r = await client.put(
        f"{base}/en", content=SRT, headers={**users.owner, "Content-Type": "image/png"}
    )
    assert r.status_code == 415


def test_caption_text_is_never_markup() -> None:
    parsed = parse_caption(
        b"WEBVTT\n\n00:00.000 --> 00:01.000\n<script>alert(1)</script> &lt;b&gt; & c\n"
    )
    assert "<script>" not in parsed.vtt
    assert "alert(1)" in parsed.vtt
    assert "&lt;b&gt; &amp; c" in parsed.vtt  # text that looks like a tag stays text


@pytest.mark.parametrize(
    ("description", "titles"),
    [
        ("Intro\n0:00 Start\n1:10 - Middle part\n[2:30] End\n", ["Start", "Middle part", "End"]),
        ("0:00 A\n0:05 B\n1:00 C\n", []),  # a chapter shorter than 10 s: none at all
        ("0:10 A\n1:00 B\n2:00 C\n", []),  # not from 0:00
        ("0:00 A\n1:00 B\n", []),  # fewer than three
        ("0:00 A\n2:00 B\n1:00 C\n", []),  # not ascending
        ("0:00 A\n1:00 B\n9:00 C\n", []),  # past the end (5 minutes)
    ],
)
def test_description_chapters_follow_youtube_rules(description: str, titles: list[str]) -> None:
    chapters = description_chapters(description, 300.0)
    assert [c.title for c in chapters] == titles
    if chapters:
        assert chapters[-1].end == 300.0


async def test_a_replaced_caption_has_a_new_url_and_its_old_file_is_removed(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo, infra: Infra
) -> None:
    """Each upload is a file of its own: a cache keyed on the path (a CDN, a browser)
    never serves the old captions for the new ones, and the old file goes."""
    base = f"/api/gallery/videos/{processed.id}/captions/de"

    async def key_of_de() -> str:
        async with session_scope(infra.sessions) as session:
            caption = await session.get(GalleryCaption, (processed.id, "de"))
            assert caption is not None
            return caption.key

    first = await client.put(base, content=SRT, headers=users.owner)
    assert first.status_code == 200, first.text
    old_key = await key_of_de()
    second = await client.put(
        base, content=b"1\n00:00:00,500 --> 00:00:01,500\nFixed line\n", headers=users.owner
    )
    assert second.status_code == 200, second.text
    new_key = await key_of_de()
    assert new_key != old_key
    assert urlsplit(second.json()["url"]).path != urlsplit(first.json()["url"]).path
    assert b"Fixed line" in await _fetch_ok(client, second.json()["url"])
    assert await infra.storage.head(old_key) is None
    assert await infra.storage.head(new_key) is not None


async def test_description_chapters_win_over_the_containers(
    client: httpx.AsyncClient, users: Users, processed: GalleryVideo, infra: Infra
) -> None:
    async with session_scope(infra.sessions) as session:
        video = await session.get(GalleryVideo, processed.id)
        assert video is not None
        video.duration = 60.0
        video.description = "0:00 Hello\n0:20 World\n0:40 Bye"
    urls = await _stream(client, processed, users.owner)
    assert [c["title"] for c in urls["chapters"]] == ["Hello", "World", "Bye"]
    text = (await _fetch_ok(client, urls["chapters_url"])).decode()
    assert "00:00:20.000 --> 00:00:40.000\nWorld" in text


async def test_text_routes_need_a_valid_token(
    client: httpx.AsyncClient,
    infra: Infra,
    processed: GalleryVideo,
    seed_video: SeedVideo,
    users: Users,
) -> None:
    good = make_token(infra.settings, processed.id, int(time.time()) + 60)
    other = make_token(infra.settings, uuid.uuid4(), int(time.time()) + 60)
    for name in ("dash/manifest.mpd", "storyboard.vtt", "chapters.vtt"):
        url = f"/api/gallery/stream/{processed.id}/{name}"
        assert (await client.get(url, params={"token": good})).status_code == 200
        for token in (other, "garbage"):
            r = await client.get(url, params={"token": token})
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "invalid_token"
    # A video without these outputs (processed before them): clear 404s, never a 500.
    bare = await seed_video(users.owner_id, hls_master_key="outputs/x/hls/master.m3u8")
    token = make_token(infra.settings, bare.id, int(time.time()) + 60)
    for name, code in (
        ("dash/manifest.mpd", "manifest_not_found"),
        ("storyboard.vtt", "storyboard_not_found"),
        ("chapters.vtt", "chapters_not_found"),
    ):
        r = await client.get(f"/api/gallery/stream/{bare.id}/{name}", params={"token": token})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == code
    urls = await _stream(client, bare, users.owner)
    assert (urls["dash"], urls["storyboard"], urls["chapters_url"]) == (None, None, None)
    assert (urls["captions"], urls["chapters"], urls["audio_tracks"]) == ([], [], [])


def test_parse_errors_are_app_errors() -> None:
    with pytest.raises(AppError):
        parse_caption(b"\x00")


# visibility -> caller -> (list, put, delete) statuses; anonymous callers are 401 where
# the video is visible to them and 404 where it is not, like every other endpoint.
CAPTION_MATRIX = {
    Visibility.PUBLIC: {
        "anonymous": (200, 401, 401),
        "owner": (200, 200, 204),
        "other": (200, 403, 403),
        "admin": (200, 200, 204),
    },
    Visibility.UNLISTED: {
        "anonymous": (200, 401, 401),
        "owner": (200, 200, 204),
        "other": (200, 403, 403),
        "admin": (200, 200, 204),
    },
    Visibility.PRIVATE: {
        "anonymous": (404, 404, 404),
        "owner": (200, 200, 204),
        "other": (404, 404, 404),
        "admin": (200, 200, 204),
    },
}


@pytest.mark.parametrize("visibility", list(CAPTION_MATRIX))
@pytest.mark.parametrize("caller", ["anonymous", "owner", "other", "admin"])
async def test_caption_authorisation_matrix(
    client: httpx.AsyncClient,
    users: Users,
    seed_video: SeedVideo,
    visibility: Visibility,
    caller: str,
) -> None:
    video = await seed_video(users.owner_id, visibility=visibility)
    headers = {"anonymous": {}, "owner": users.owner, "other": users.other, "admin": users.admin}[
        caller
    ]
    base = f"/api/gallery/videos/{video.id}/captions"
    expected = CAPTION_MATRIX[visibility][caller]
    got = (
        (await client.get(base, headers=headers)).status_code,
        (await client.put(f"{base}/en", content=SRT, headers=headers)).status_code,
        (await client.delete(f"{base}/en", headers=headers)).status_code,
    )
    assert got == expected

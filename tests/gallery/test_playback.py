"""Stream URLs and HLS playlists served with every URI signed (local store: the
signatures are really checked when the URLs are fetched)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import pytest

from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gallery.playback import make_token, playlist_key
from videoforge.infra.errors import NotFound
from videoforge.infra.runtime import Infra
from videoforge.infra.secrets import KeyPurpose, derive_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.settings import DEV_JWT_SECRET

from .conftest import SeedVideo, Users

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2"
240p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=160x120,CODECS="avc1.42c00b"
mobile/index.m3u8
"""

VARIANT = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.000000,
seg_00000.m4s
#EXTINF:1.000000,
seg_00001.m4s
#EXT-X-ENDLIST
"""

# A playlist that tries to make the gallery sign objects outside the video's HLS dir.
HOSTILE = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MAP:URI="../../../originals/victim/abc/source"
#EXTINF:2.0,
../../secret.mp4
#EXTINF:2.0,
http://169.254.169.254/latest/meta-data
#EXTINF:2.0,
seg_00000.m4s
#EXT-X-ENDLIST
"""


@pytest.fixture
async def ready_video(infra: Infra, users: Users, seed_video: SeedVideo) -> GalleryVideo:
    job = uuid.uuid4()
    base = f"outputs/{job}"
    objects = {
        f"{base}/hls/master.m3u8": MASTER.encode(),
        f"{base}/hls/240p/index.m3u8": VARIANT.encode(),
        f"{base}/hls/mobile/index.m3u8": VARIANT.encode(),
        f"{base}/hls/evil/index.m3u8": HOSTILE.encode(),
        f"{base}/thumbnail.jpg": b"\xff\xd8\xff thumbnail",
        f"{base}/preview.gif": b"GIF89a preview",
        f"{base}/mp4/240p.mp4": b"\x00\x00\x00\x18ftypmp42 rendition",
    }
    for quality in ("240p", "mobile"):
        for name in ("init.mp4", "seg_00000.m4s", "seg_00001.m4s"):
            objects[f"{base}/hls/{quality}/{name}"] = f"{quality}/{name}".encode()
    original = f"originals/{users.owner_id}/{job.hex}/source"
    objects[original] = b"\x00\x00\x00\x18ftypisom original bytes"
    for key, data in objects.items():
        await infra.storage.put_bytes(key, data, content_type="application/octet-stream")
    return await seed_video(
        users.owner_id,
        visibility=Visibility.PRIVATE,
        s3_key=original,
        original_filename="holiday <script>.mp4",
        content_type="video/mp4",
        hls_master_key=f"{base}/hls/master.m3u8",
        thumbnail_key=f"{base}/thumbnail.jpg",
        preview_key=f"{base}/preview.gif",
        job_id=job,
        renditions=[
            {
                "quality": "240p",
                "width": 320,
                "height": 240,
                "bandwidth": 300000,
                "mp4_key": f"{base}/mp4/240p.mp4",
                "playlist_key": f"{base}/hls/240p/index.m3u8",
            }
        ],
    )


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def _uris(playlist: str) -> list[str]:
    found = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            found.append(line)
    return found


async def test_every_uri_in_the_playlists_is_signed_and_accepted(
    client: httpx.AsyncClient, users: Users, ready_video: GalleryVideo
) -> None:
    r = await client.get(f"/api/gallery/stream/{ready_video.id}", headers=users.owner)
    assert r.status_code == 200, r.text
    urls = r.json()
    master = await client.get(urls["hls"])
    assert master.status_code == 200, master.text
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert 'CODECS="avc1.42c00d,mp4a.40.2"' in master.text
    variants = _uris(master.text)
    assert len(variants) == 2
    fetched = 0
    for variant_uri in variants:
        assert variant_uri.endswith(".m3u8?token=" + quote(token_of(urls["hls"]), safe=""))
        variant_url = urljoin(urls["hls"], variant_uri)  # as a player resolves it
        variant = await client.get(variant_url)
        assert variant.status_code == 200, variant.text
        quality = urlsplit(variant_url).path.split("/")[-2]
        media = _uris(variant.text)
        assert len(media) == 3  # init + two segments
        for media_url in media:
            assert "/storage/" in media_url  # a signed storage URL, not a bare key
            got = await client.get(urljoin(variant_url, media_url))
            assert got.status_code == 200, (media_url, got.text)
            assert got.content.decode().startswith(f"{quality}/")
            fetched += 1
            # Tampering with the signed URL is refused by the store.
            tampered = media_url.replace("seg_00000", "seg_00001")
            if tampered != media_url:
                assert (await client.get(urljoin(variant_url, tampered))).status_code == 403
    assert fetched == 6

    for url in (urls["thumbnail"], urls["preview"], urls["renditions"][0]["url"]):
        assert (await client.get(url)).status_code == 200
    original = await client.get(urls["original"])
    assert original.status_code == 200
    assert original.headers["content-disposition"].startswith("attachment")
    assert original.headers["x-content-type-options"] == "nosniff"


async def test_hostile_playlist_signs_nothing_outside_the_hls_dir(
    client: httpx.AsyncClient, infra: Infra, users: Users, ready_video: GalleryVideo
) -> None:
    token = make_token(infra.settings, ready_video.id, int(time.time()) + 60)
    r = await client.get(
        f"/api/gallery/stream/{ready_video.id}/hls/evil/index.m3u8", params={"token": token}
    )
    assert r.status_code == 200
    uris = _uris(r.text)
    assert len(uris) == 1
    assert "evil/seg_00000.m4s" in uris[0]
    assert "originals" not in r.text
    assert "169.254" not in r.text
    assert "secret" not in r.text


async def test_bad_tokens_and_paths(
    client: httpx.AsyncClient,
    infra: Infra,
    users: Users,
    ready_video: GalleryVideo,
    seed_video: SeedVideo,
) -> None:
    url = f"/api/gallery/stream/{ready_video.id}/hls/master.m3u8"
    good = make_token(infra.settings, ready_video.id, int(time.time()) + 60)
    assert (await client.get(url, params={"token": good})).status_code == 200

    expired = make_token(infra.settings, ready_video.id, int(time.time()) - 1)
    other_video = make_token(infra.settings, uuid.uuid4(), int(time.time()) + 60)
    exp, _, mac = good.partition(".")
    forged_expiry = f"{int(exp) + 3600}.{mac}"
    forged_mac = f"{exp}.{'A' * len(mac)}"
    for token in (expired, other_video, forged_expiry, forged_mac, "", "garbage"):
        r = await client.get(url, params={"token": token})
        assert r.status_code == 403, token
        assert r.json()["error"]["code"] == "invalid_token"
    assert (await client.get(url)).status_code == 403

    # (httpx normalises literal "../" away; encoded slashes reach the handler.)
    for path in ("..%2F..%2Fx.m3u8", "240p/..%2F..%2F..%2Fx.m3u8", "nope.m3u8", "240p/init.mp4"):
        r = await client.get(
            f"/api/gallery/stream/{ready_video.id}/hls/{path}", params={"token": good}
        )
        assert r.status_code == 404, path

    # The stream token is only handed out to callers who may see the video.
    assert (await client.get(f"/api/gallery/stream/{ready_video.id}")).status_code == 404
    stream = (await client.get(f"/api/gallery/stream/{ready_video.id}", headers=users.owner)).json()
    token = parse_qs(urlsplit(stream["hls"]).query)["token"][0]
    assert (await client.get(url, params={"token": token})).status_code == 200


async def test_not_ready_video_has_no_stream(
    client: httpx.AsyncClient, users: Users, seed_video: SeedVideo
) -> None:
    video = await seed_video(users.owner_id, status=VideoStatus.PROCESSING)
    r = await client.get(f"/api/gallery/stream/{video.id}", headers=users.owner)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "video_not_ready"


def test_playlist_paths_cannot_leave_the_hls_dir(ready_video: GalleryVideo) -> None:
    assert playlist_key(ready_video, "240p/index.m3u8").endswith("/hls/240p/index.m3u8")
    for path in ("../x.m3u8", "240p/../../x.m3u8", "/etc/x.m3u8", "a\\..\\x.m3u8", "x.mp4"):
        with pytest.raises(NotFound):
            playlist_key(ready_video, path)


async def test_forwarded_host_is_ignored_from_untrusted_peers(
    client: httpx.AsyncClient, users: Users, ready_video: GalleryVideo
) -> None:
    # FORWARDED_ALLOW_IPS is empty by default: a client cannot choose the links' host.
    r = await client.get(
        f"/api/gallery/stream/{ready_video.id}",
        headers=users.owner | {"X-Forwarded-Host": "videos.example.com"},
    )
    assert r.json()["hls"].startswith("http://testserver/")


@pytest.mark.parametrize("settings_extra", [{"FORWARDED_ALLOW_IPS": "127.0.0.0/8"}])
async def test_urls_follow_a_trusted_proxy_host(
    client: httpx.AsyncClient, users: Users, ready_video: GalleryVideo
) -> None:
    r = await client.get(
        f"/api/gallery/stream/{ready_video.id}",
        headers=users.owner | {"X-Forwarded-Host": "videos.example.com"},
    )
    assert r.json()["hls"].startswith(
        f"http://videos.example.com/api/gallery/stream/{ready_video.id}/hls/master.m3u8?token="
    )
    r = await client.get(
        f"/api/gallery/stream/{ready_video.id}",
        headers=users.owner | {"X-Forwarded-Host": "evil.example/<script>"},
    )
    assert r.json()["hls"].startswith("http://testserver/")


def _published_secret_token(video_id: uuid.UUID, expires: int, key: bytes) -> str:
    message = f"{video_id.hex}.{expires}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest())
    return f"{expires}.{mac.decode().rstrip('=')}"


async def test_the_sources_constants_sign_nothing_on_a_fresh_install(
    client: httpx.AsyncClient, infra: Infra, ready_video: GalleryVideo
) -> None:
    """What anyone who read the source could mint (the old built-in JWT_SECRET, put
    through either derivation the code ever used) is refused by a fresh install."""
    assert infra.settings.jwt_secret is None  # a default install: nothing configured
    expires = int(time.time()) + 600
    published = DEV_JWT_SECRET.encode()
    playlist_keys = [
        hashlib.sha256(b"videoforge/gallery/hls-token\x00" + published).digest(),
        derive_key(published, KeyPurpose.PLAYLIST_TOKENS),
    ]
    master = f"/api/gallery/stream/{ready_video.id}/hls/master.m3u8"
    for key in playlist_keys:
        token = _published_secret_token(ready_video.id, expires, key)
        r = await client.get(master, params={"token": token})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "invalid_token"
    # The install's own key does sign (so the refusals above are about the key).
    genuine = make_token(infra.settings, ready_video.id, expires)
    assert (await client.get(master, params={"token": genuine})).status_code == 200

    # A storage PUT URL for the video's thumbnail, signed with the published secret's key.
    assert ready_video.thumbnail_key is not None
    before = await infra.storage.get_bytes(ready_video.thumbnail_key)
    forger = LocalStorage(
        infra.settings.storage_dir, signing_key=derive_key(published, KeyPurpose.STORAGE_URLS)
    )
    url = await forger.presign_put(
        ready_video.thumbnail_key, expires_in=600, content_type="image/jpeg"
    )
    r = await client.put(url, content=b"defaced", headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 403, r.text
    assert await infra.storage.get_bytes(ready_video.thumbnail_key) == before
    # The same PUT signed by the install itself goes through.
    url = await infra.storage.presign_put(
        ready_video.thumbnail_key, expires_in=600, content_type="image/jpeg"
    )
    r = await client.put(url, content=b"replaced", headers={"Content-Type": "image/jpeg"})
    assert r.status_code in (200, 201, 204), r.text


async def test_stream_responses_are_never_cached(
    client: httpx.AsyncClient, users: Users, ready_video: GalleryVideo
) -> None:
    r = await client.get(f"/api/gallery/stream/{ready_video.id}", headers=users.owner)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-store"
    master = urlsplit(r.json()["hls"])
    r = await client.get(f"{master.path}?{master.query}")
    assert r.headers["cache-control"] == "private, no-store"
    # Playlists and JSON are data: a restrictive CSP like every other response.
    assert "default-src 'none'" in r.headers["content-security-policy"]


async def test_error_answers_are_never_cached(
    client: httpx.AsyncClient, ready_video: GalleryVideo
) -> None:
    """A refused token, a video that is not there, a bad parameter, an unknown route: a
    shared cache must keep none of them (a 404 is cacheable unless it says otherwise)."""
    answers = [
        await client.get(f"/api/gallery/stream/{ready_video.id}/hls/master.m3u8?token=forged"),
        await client.get(f"/api/gallery/stream/{uuid.uuid4()}"),
        await client.get("/api/gallery/videos?page=0"),
        await client.get("/api/gallery/no-such-route"),
    ]
    assert [r.status_code for r in answers] == [403, 404, 422, 404]
    for r in answers:
        assert r.headers["cache-control"] == "no-store", r.url
        assert set(r.json()["error"]) >= {"code", "message"}

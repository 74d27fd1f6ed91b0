"""The gallery behind a CDN: with CLOUDFRONT_URL set (and the bucket on S3), the
playback URLs it hands out (listing stills, stream renditions and stills, every URI in
the HLS playlists it serves) are CloudFront signed URLs that verify with the public
key; the original's download stays an S3 presigned URL; who may see what is unchanged."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import m3u8
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.infra.runtime import Infra

from ..infra.storage.test_cdn import verify
from .conftest import SeedVideo, Users

CDN = "https://d2cdnexample.cloudfront.net"

MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=64x48\n240p/index.m3u8\n"
MEDIA = (
    '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4"\n'
    "#EXTINF:4.0,\nseg_00000.m4s\n#EXTINF:4.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"
)


@pytest.fixture(scope="module")
def cdn_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def settings_extra(
    moto_endpoint: str, unique: str, tmp_path: Path, cdn_key: rsa.RSAPrivateKey
) -> dict[str, Any]:
    bucket = f"vf-cdn-{unique}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    pem = tmp_path / "cdn.pem"
    pem.write_bytes(
        cdn_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {
        "S3_BUCKET_NAME": bucket,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "S3_PATH_STYLE": True,
        "CLOUDFRONT_URL": CDN,
        "CLOUDFRONT_KEY_PAIR_ID": "K3CDNTESTKEY",
        "CLOUDFRONT_PRIVATE_KEY_FILE": str(pem),
    }


@pytest.fixture
async def video(infra: Infra, users: Users, seed_video: SeedVideo) -> GalleryVideo:
    """A private processed video whose playlists, stills and MP4 are in the bucket."""
    prefix = f"outputs/{uuid.uuid4()}/"
    objects = {
        "hls/master.m3u8": MASTER,
        "hls/240p/index.m3u8": MEDIA,
        "hls/240p/init.mp4": "init",
        "hls/240p/seg_00000.m4s": "0",
        "hls/240p/seg_00001.m4s": "1",
        "thumbnail.jpg": "jpeg",
        "mp4/240p.mp4": "mp4",
    }
    for rel, body in objects.items():
        await infra.storage.put_bytes(prefix + rel, body.encode())
    original = f"originals/{users.owner_id}/{uuid.uuid4()}/original"
    await infra.storage.put_bytes(original, b"source")
    return await seed_video(
        users.owner_id,
        visibility=Visibility.PRIVATE,
        status=VideoStatus.READY,
        s3_key=original,
        original_filename="holiday.mp4",
        thumbnail_key=prefix + "thumbnail.jpg",
        hls_master_key=prefix + "hls/master.m3u8",
        renditions=[
            {"quality": "240p", "width": 64, "height": 48, "mp4_key": prefix + "mp4/240p.mp4"}
        ],
    )


def _signed_by_cdn(url: str | None, key: rsa.RSAPrivateKey) -> bool:
    return (
        bool(url)
        and str(url).startswith(f"{CDN}/")
        and verify(str(url), key.public_key(), time.time())
    )


async def test_playback_urls_are_cdn_signed_and_visibility_is_unchanged(
    client: httpx.AsyncClient, users: Users, video: GalleryVideo, cdn_key: rsa.RSAPrivateKey
) -> None:
    stream = f"/api/gallery/stream/{video.id}"
    # A private video is nobody else's, CDN or not.
    assert (await client.get(stream)).status_code in (401, 404)
    assert (await client.get(stream, headers=users.other)).status_code == 404

    urls = (await client.get(stream, headers=users.owner)).json()
    assert _signed_by_cdn(urls["thumbnail"], cdn_key), urls["thumbnail"]
    assert [_signed_by_cdn(r["url"], cdn_key) for r in urls["renditions"]] == [True]
    # The owner's download names its file: S3's own presigned URL.
    assert "X-Amz-Signature=" in urls["original"]
    assert not urls["original"].startswith(CDN)

    # The playlists are the gallery's; what they name is signed for the CDN.
    master = m3u8.loads((await client.get(urls["hls"])).text)
    (variant,) = master.playlists
    assert variant.uri
    assert not variant.uri.startswith(CDN)
    base = urls["hls"].rsplit("/", 1)[0]
    served = await client.get(f"{base}/{variant.uri}")
    assert served.status_code == 200, served.text
    media = m3u8.loads(served.text)
    named = [s.uri for s in media.segments] + [media.segment_map[0].uri]
    assert len(named) == 3
    assert all(_signed_by_cdn(uri, cdn_key) for uri in named), named

    listed = (
        await client.get("/api/gallery/videos", params={"owner": "me"}, headers=users.owner)
    ).json()
    (item,) = [i for i in listed["items"] if i["id"] == str(video.id)]
    assert _signed_by_cdn(item["thumbnail_url"], cdn_key), item["thumbnail_url"]

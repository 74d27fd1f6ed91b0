"""CloudFront signed URLs, checked against CloudFront's documented canned-policy format
with the public key (an independent verifier, not the signing library read back)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from videoforge.infra.storage import build_storage
from videoforge.infra.storage.cdn import CloudFrontStorage, CloudFrontUrls
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.settings import Settings, SettingsError, load_settings

CDN = "https://d111111abcdef8.cloudfront.net"
#: Not on a window's edge: a second later is still the same window.
NOW = 1_800_000_010.0


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _urls(key: rsa.RSAPrivateKey, now: list[float], window: int = 300) -> CloudFrontUrls:
    return CloudFrontUrls(
        CDN, key_pair_id="K2JCJMDEHXQW5F", private_key_pem=_pem(key), window=window,
        clock=lambda: now[0],
    )  # fmt: skip


def verify(url: str, public_key: rsa.RSAPublicKey, now: float) -> bool:
    """What CloudFront does with a canned-policy URL: rebuild the policy from the URL and
    ``Expires``, check the RSA-SHA1 signature (CloudFront's base64: + = / as - _ ~), and
    refuse it once ``Expires`` has passed."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if set(query) != {"Expires", "Signature", "Key-Pair-Id"}:
        return False
    expires = int(query["Expires"][0])
    resource = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    condition = {"DateLessThan": {"AWS:EpochTime": expires}}
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": condition}]}, separators=(",", ":")
    )
    signature = base64.b64decode(
        query["Signature"][0].replace("-", "+").replace("_", "=").replace("~", "/")
    )
    try:
        public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    except InvalidSignature:
        return False
    return now < expires


def test_signed_urls_verify_with_the_public_key_until_they_expire(
    key: rsa.RSAPrivateKey,
) -> None:
    now = [NOW]
    url = _urls(key, now).sign("outputs/job/hls/720p/seg_00001.m4s", expires_in=600)
    assert url.startswith(f"{CDN}/outputs/job/hls/720p/seg_00001.m4s?")
    assert parse_qs(urlsplit(url).query)["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    assert verify(url, key.public_key(), now=NOW)
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
    # At least the time asked for, at most one window more.
    assert NOW + 600 <= expires <= NOW + 600 + 300
    assert not verify(url, key.public_key(), now=expires)


def test_tampered_urls_fail(key: rsa.RSAPrivateKey) -> None:
    url = _urls(key, [NOW]).sign("outputs/job/thumbnail.jpg", expires_in=600)
    public = key.public_key()
    other_object = url.replace("thumbnail.jpg", "preview.gif")
    assert not verify(other_object, public, now=NOW)
    query = parse_qs(urlsplit(url).query)
    later = url.replace(f"Expires={query['Expires'][0]}", f"Expires={int(query['Expires'][0]) + 1}")
    assert not verify(later, public, now=NOW)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not verify(url, stranger.public_key(), now=NOW)


def test_one_url_per_object_and_window_so_it_can_be_cached(key: rsa.RSAPrivateKey) -> None:
    now = [NOW]
    urls = _urls(key, now, window=300)
    first = urls.sign("outputs/j/thumbnail.jpg", expires_in=3600)
    now[0] += 1  # another viewer, a second later: the very same URL
    assert urls.sign("outputs/j/thumbnail.jpg", expires_in=3600) == first
    now[0] += 300  # the next window: a new URL
    assert urls.sign("outputs/j/thumbnail.jpg", expires_in=3600) != first


def test_keys_are_validated_and_quoted(key: rsa.RSAPrivateKey) -> None:
    urls = _urls(key, [NOW])
    with pytest.raises(ValueError, match=r"\.\."):
        urls.sign("outputs/../originals/x", expires_in=60)
    url = urls.sign("outputs/j/a b#c.vtt", expires_in=60)
    assert "/outputs/j/a%20b%23c.vtt?" in url
    assert verify(url, key.public_key(), now=NOW)


def _settings(tmp_path: Path, key: rsa.RSAPrivateKey, **extra: str) -> Settings:
    pem_file = tmp_path / "cf.pem"
    pem_file.write_bytes(_pem(key))
    return load_settings(
        S3_BUCKET_NAME="videos",
        CLOUDFRONT_URL=CDN,
        CLOUDFRONT_KEY_PAIR_ID="K2JCJMDEHXQW5F",
        CLOUDFRONT_PRIVATE_KEY_FILE=str(pem_file),
        **extra,
    )


async def test_playback_urls_go_through_the_cdn_and_downloads_stay_on_s3(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    store = build_storage(_settings(tmp_path, key))
    assert isinstance(store, CloudFrontStorage)
    segment = await store.presign_get("outputs/j/hls/240p/seg_00000.m4s", expires_in=600)
    assert segment.startswith(f"{CDN}/outputs/j/hls/240p/seg_00000.m4s?")
    assert verify(segment, key.public_key(), now=time.time())
    # A download names its file: S3 sets Content-Disposition, under its own signature.
    download = await store.presign_get(
        "originals/u/x/original", expires_in=600, download_name="a.mp4"
    )
    assert "X-Amz-Signature=" in download
    assert "response-content-disposition=" in download
    assert not download.startswith(CDN)


def test_without_a_cdn_the_store_is_plain_s3(tmp_path: Path) -> None:
    store = build_storage(load_settings(S3_BUCKET_NAME="videos"))
    assert type(store) is S3Storage


def test_a_pem_with_flattened_newlines_is_read(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    flattened = _pem(key).decode().replace("\n", "\\n")
    settings = load_settings(
        S3_BUCKET_NAME="videos",
        CLOUDFRONT_URL=CDN,
        CLOUDFRONT_KEY_PAIR_ID="K1",
        CLOUDFRONT_PRIVATE_KEY=flattened,
    )
    assert CloudFrontUrls.from_settings(settings) is not None


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"CLOUDFRONT_URL": CDN}, "S3_BUCKET_NAME"),
        ({"CLOUDFRONT_URL": CDN, "S3_BUCKET_NAME": "v"}, "CLOUDFRONT_KEY_PAIR_ID"),
        (
            {"CLOUDFRONT_URL": CDN, "S3_BUCKET_NAME": "v", "CLOUDFRONT_KEY_PAIR_ID": "K"},
            "CLOUDFRONT_PRIVATE_KEY",
        ),
    ],
)
def test_an_incomplete_cdn_configuration_is_refused(extra: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(**extra)

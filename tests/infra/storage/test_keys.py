"""Key, metadata and header helpers shared by both backends."""

from __future__ import annotations

import pytest

from videoforge.infra.storage.base import (
    InvalidKey,
    InvalidMetadata,
    content_disposition,
    normalize_metadata,
    strip_etag,
    validate_content_type,
    validate_key,
    validate_prefix,
)


@pytest.mark.parametrize(
    "key",
    [
        "uploads/3f2a/original",
        "outputs/job-1/hls/720p/seg_00001.ts",
        "a",
        "vidéo/ünïcode ok.mp4",
        "x" * 1024,
        "dots.in.name/..x/x..",
    ],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "non-empty"),
        ("x" * 1025, "longer than 1024"),
        ("é" * 513, "longer than 1024"),  # 1026 bytes in UTF-8
        ("/etc/passwd", "relative"),
        ("..\\x", "backslash"),
        ("a\x00b", "U\\+0000"),
        ("a\nb", "U\\+000A"),
        ("\u202egnp.exe", "U\\+202E"),
        ("file\u200e.mp4", "U\\+200E"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("../x", "'..'"),
        ("a/./b", "'..'"),
        ("\ud800", "UTF-8"),
    ],
)
def test_invalid_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason):
        validate_key(key)


def test_prefixes() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("outputs/job-1/") == "outputs/job-1/"
    assert validate_prefix("outputs/job-1") == "outputs/job-1"
    with pytest.raises(InvalidKey):
        validate_prefix("", allow_empty=False)
    with pytest.raises(InvalidKey):
        validate_prefix("../")


def test_metadata_is_normalised_like_s3() -> None:
    assert normalize_metadata({"Owner-Id": "u1", "x_y": ""}) == {"owner-id": "u1", "x_y": ""}
    assert normalize_metadata(None) == {}
    with pytest.raises(InvalidMetadata):
        normalize_metadata({"bad name": "v"})
    with pytest.raises(InvalidMetadata):
        normalize_metadata({"name": "caf\u00e9"})
    with pytest.raises(InvalidMetadata):
        normalize_metadata({"name": "a\r\nInjected: yes"})
    with pytest.raises(InvalidMetadata):
        normalize_metadata({f"k{i}": "v" * 100 for i in range(30)})


def test_content_type_must_be_a_clean_header_value() -> None:
    assert validate_content_type("video/mp4") == "video/mp4"
    for bad in ("", "video/mp4\r\nX-Evil: 1", "vidéo/mp4", "x" * 256):
        with pytest.raises(InvalidMetadata):
            validate_content_type(bad)


def test_content_disposition_cannot_inject_headers() -> None:
    value = content_disposition('../../evil"\r\nSet-Cookie: a=b;.html')
    assert "\r" not in value
    assert "\n" not in value
    assert value.startswith('attachment; filename="')
    assert "../" not in value.split("filename*=")[0]
    assert content_disposition("Ünïcödé clip.mp4") == (
        'attachment; filename="_n_c_d_ clip.mp4"; '
        "filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20clip.mp4"
    )
    assert content_disposition("") == "attachment; filename=\"download\"; filename*=UTF-8''download"


def test_strip_etag() -> None:
    assert strip_etag('"abc"') == "abc"
    assert strip_etag('W/"abc-2"') == "abc-2"
    assert strip_etag("abc") == "abc"
    assert strip_etag(None) is None

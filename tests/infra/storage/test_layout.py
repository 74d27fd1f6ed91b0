"""The storage key layout (infra/storage/keys.py): one rule per kind of key, as tables."""

from __future__ import annotations

import re
import uuid

import pytest

from videoforge.infra.storage.base import validate_key
from videoforge.infra.storage.keys import (
    captions_prefix,
    final_key,
    import_key,
    is_import_of,
    job_of_output_key,
    new_caption_key,
    new_upload_key,
    output_key,
    output_prefix,
    user_segment,
    video_prefixes,
)

JOB = uuid.UUID("0b9e4a5c-1d2e-4f60-8a7b-9c0d1e2f3a4b")
VIDEO = uuid.UUID("7f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190")
_DIGEST = re.compile(r"^u[0-9a-f]{32}$")

#: User ids a key must never take literally: they would add segments, fail
#: validate_key, or carry characters S3 and the local store spell differently.
ODD_USER_IDS = [
    "",
    "a/b",
    "../../etc",
    "..",
    "auth0|5f1e",
    "name@example.com",
    "vidéo",
    "a b",
    "a\x00b",
    "\u202eevil",
    "x" * 129,
]


@pytest.mark.parametrize(
    "user_id",
    ["u1", "3f0c8a9e-4b2d-4e6f-9a1b-2c3d4e5f6a7b", "A_b-9", "x" * 128],
)
def test_a_key_safe_user_id_is_its_own_segment(user_id: str) -> None:
    assert user_segment(user_id) == user_id


@pytest.mark.parametrize("user_id", ODD_USER_IDS)
def test_any_other_user_id_becomes_a_stable_digest(user_id: str) -> None:
    segment = user_segment(user_id)
    assert _DIGEST.match(segment)
    assert user_segment(user_id) == segment
    assert validate_key(f"originals/{segment}/x") == f"originals/{segment}/x"


def test_different_odd_user_ids_get_different_segments() -> None:
    segments = {user_segment(user_id) for user_id in ODD_USER_IDS}
    assert len(segments) == len(ODD_USER_IDS)


@pytest.mark.parametrize(
    ("user_id", "video_id", "expected"),
    [
        ("u1", VIDEO, f"originals/u1/{VIDEO}/import"),
        ("u1", None, f"originals/u1/{JOB}/import"),
        ("a/b", VIDEO, f"originals/{user_segment('a/b')}/{VIDEO}/import"),
        ("../../etc", None, f"originals/{user_segment('../../etc')}/{JOB}/import"),
    ],
)
def test_import_key(user_id: str, video_id: uuid.UUID | None, expected: str) -> None:
    assert import_key(user_id, video_id, JOB) == expected
    assert validate_key(expected) == expected


@pytest.mark.parametrize("user_id", ["u1", *ODD_USER_IDS])
def test_uploads_and_imports_of_one_user_share_its_segment(user_id: str) -> None:
    upload = new_upload_key(user_id)
    imported = import_key(user_id, VIDEO, JOB)
    assert upload.split("/")[:2] == imported.split("/")[:2] == ["originals", user_segment(user_id)]
    for key in (upload, final_key(upload), imported):
        assert validate_key(key) == key
        assert len(key.split("/")) == 4


def test_upload_keys_are_fresh_and_confirmed_originals_sit_beside_them() -> None:
    first, second = new_upload_key("u1"), new_upload_key("u1")
    assert first != second
    assert re.fullmatch(r"originals/u1/[A-Za-z0-9_-]{24}/source", first)
    assert final_key(first) == first.removesuffix("/source") + "/original"


@pytest.mark.parametrize(
    ("key", "user_id", "expected"),
    [
        (f"originals/u1/{VIDEO}/import", "u1", True),
        (f"originals/{user_segment('a/b')}/{VIDEO}/import", "a/b", True),
        # Written before imports used the sanitised segment: still the video's import.
        (f"originals/a/b/{VIDEO}/import", "a/b", True),
        (f"originals/auth0|5f1e/{VIDEO}/import", "auth0|5f1e", True),
        (f"originals/u1/{VIDEO}/source", "u1", False),
        (f"originals/u1/{VIDEO}/original", "u1", False),
        (f"originals/u1/{JOB}/import", "u1", False),
        (f"originals/u2/{VIDEO}/import", "u1", False),
        (f"originals/u1/{VIDEO}/import/x", "u1", False),
        (f"outputs/{JOB}/thumbnail.jpg", "u1", False),
    ],
)
def test_is_import_of(key: str, user_id: str, expected: bool) -> None:
    assert is_import_of(key, user_id, VIDEO) is expected


@pytest.mark.parametrize(
    ("rel_key", "expected"),
    [
        ("hls/master.m3u8", f"outputs/{JOB}/hls/master.m3u8"),
        ("/hls/master.m3u8", f"outputs/{JOB}/hls/master.m3u8"),
        ("thumbnail.jpg", f"outputs/{JOB}/thumbnail.jpg"),
    ],
)
def test_output_keys_are_deterministic(rel_key: str, expected: str) -> None:
    assert output_key(JOB, rel_key) == expected
    assert expected.startswith(output_prefix(JOB))
    assert job_of_output_key(expected) == JOB


@pytest.mark.parametrize("rel_key", ["", "/", "../x", "a/../../b", "hls/.."])
def test_output_keys_stay_inside_their_job(rel_key: str) -> None:
    with pytest.raises(ValueError, match="bad relative output key"):
        output_key(JOB, rel_key)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"outputs/{JOB}/x", JOB),
        (f"outputs/{JOB.hex}/x", JOB),
        (f"outputs/{JOB}", None),
        (f"originals/u1/{JOB}/import", None),
        ("outputs/not-a-uuid-at-all-not-a-uuid-at-all/x", None),
        (f"captions/{JOB}/en.vtt", None),
    ],
)
def test_job_of_output_key(key: str, expected: uuid.UUID | None) -> None:
    assert job_of_output_key(key) == expected


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_caption_keys_are_new_for_every_upload(language: str) -> None:
    first, second = new_caption_key(VIDEO, language), new_caption_key(VIDEO, language)
    assert first != second
    for key in (first, second):
        assert key.startswith(f"{captions_prefix(VIDEO)}{language}.")
        assert key.endswith(".vtt")
        assert validate_key(key) == key


def test_a_videos_prefixes_are_its_jobs_outputs_then_its_captions_and_thumbnails() -> None:
    other = uuid.UUID(int=1)
    assert video_prefixes(VIDEO, [JOB, other, JOB]) == [
        f"outputs/{other}/",
        f"outputs/{JOB}/",
        f"captions/{VIDEO}/",
        f"thumbnails/{VIDEO}/",
    ]
    assert video_prefixes(VIDEO, []) == [f"captions/{VIDEO}/", f"thumbnails/{VIDEO}/"]

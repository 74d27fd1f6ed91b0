"""The object store's key layout: every key a service writes is spelled here, once.

::

    originals/{user}/{token}/source     an upload's key: the one URL was issued for
    originals/{user}/{token}/original   the confirmed copy a video keeps (never signed for)
    originals/{user}/{video}/import     an original the processor fetched from a URL
                                        (the job's id when the job has no video)
    outputs/{job}/{rel}                 everything one job produced, by the pipeline's
                                        relative keys
    captions/{video}/{language}.vtt     an owner's uploaded captions
    thumbnails/{video}/{token}.jpg      an owner's uploaded thumbnail (re-encoded); a new
                                        token per upload, the replaced one deleted

``{user}`` is always :func:`user_segment`: the id itself when it is key-safe, else a
digest, so a user id with ``/``, ``..`` or odd characters can neither add segments nor
fail :func:`~.base.validate_key`, and uploads and imports of one user share one prefix.

Originals are the gallery's (nothing in the processor deletes under ``originals/``);
outputs are deterministic per job, so a retried job overwrites instead of duplicating;
a caption's key is its video's and language's, so an upload replaces the previous one.
Every stored key is also recorded in full where it is used (the video's ``s3_key``, the
job's assets), so readers never rebuild a key from its parts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable

ORIGINALS_ROOT = "originals/"
OUTPUTS_ROOT = "outputs/"
CAPTIONS_ROOT = "captions/"
THUMBNAILS_ROOT = "thumbnails/"
#: Last segment of an upload key, of a confirmed original and of an imported one.
UPLOAD_NAME = "source"
ORIGINAL_NAME = "original"
IMPORT_NAME = "import"

_SAFE_USER = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_OUTPUT_PREFIX = re.compile(r"^outputs/(?P<job>[0-9a-fA-F-]{32,36})/")


def user_segment(user_id: str) -> str:
    """The user's segment of a key: the id itself when it is key-safe, else a digest."""
    if _SAFE_USER.match(user_id):
        return user_id
    return "u" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def user_originals_prefix(user_id: str) -> str:
    """``originals/{user}/``: every original, uploaded or imported, of one user."""
    return f"{ORIGINALS_ROOT}{user_segment(user_id)}/"


def new_upload_key(user_id: str) -> str:
    """A fresh, unguessable key for one upload; the client's file name plays no part."""
    return f"{user_originals_prefix(user_id)}{secrets.token_urlsafe(18)}/{UPLOAD_NAME}"


def final_key(upload_key: str) -> str:
    """Where a confirmed original lives: next to its upload key, never signed for."""
    return f"{upload_key.rsplit('/', 1)[0]}/{ORIGINAL_NAME}"


def import_key(user_id: str, video_id: uuid.UUID | None, job_id: uuid.UUID) -> str:
    """Where an original fetched from a URL is kept: under the video's id, or the job's
    when the job has no video."""
    return f"{user_originals_prefix(user_id)}{video_id or job_id}/{IMPORT_NAME}"


def is_import_of(key: str, user_id: str, video_id: uuid.UUID) -> bool:
    """Whether ``key`` is the imported original of ``video_id``, including one stored
    when imports still used the raw user id as the segment (those keys stay valid)."""
    current = f"{user_originals_prefix(user_id)}{video_id}/{IMPORT_NAME}"
    legacy = f"{ORIGINALS_ROOT}{user_id}/{video_id}/{IMPORT_NAME}"
    return key in (current, legacy)


def output_prefix(job_id: uuid.UUID) -> str:
    """``outputs/{job_id}/``: everything one job produced."""
    return f"{OUTPUTS_ROOT}{job_id}/"


def output_key(job_id: uuid.UUID, rel_key: str) -> str:
    """The full key of one of a job's outputs (``rel_key`` as the pipeline names it)."""
    rel = rel_key.lstrip("/")
    if not rel or ".." in rel.split("/"):
        raise ValueError(f"bad relative output key: {rel_key!r}")
    return output_prefix(job_id) + rel


def job_of_output_key(key: str) -> uuid.UUID | None:
    """The job id an ``outputs/{job_id}/...`` key belongs to, else ``None``."""
    match = _OUTPUT_PREFIX.match(key)
    if match is None:
        return None
    try:
        return uuid.UUID(match["job"])
    except ValueError:
        return None


def captions_prefix(video_id: uuid.UUID) -> str:
    """Every uploaded caption of a video lives under this prefix."""
    return f"{CAPTIONS_ROOT}{video_id}/"


def new_caption_key(video_id: uuid.UUID, language: str) -> str:
    """A fresh key for an uploaded caption in ``language`` (a normalised tag): a new one
    per upload, as for thumbnails, so a CDN (whose cache key is the path alone) or a
    browser that cached the previous file never serves it for the new one."""
    return f"{captions_prefix(video_id)}{language}.{secrets.token_urlsafe(9)}.vtt"


def thumbnails_prefix(video_id: uuid.UUID) -> str:
    """Every thumbnail image an owner uploaded for a video lives under this prefix."""
    return f"{THUMBNAILS_ROOT}{video_id}/"


def new_thumbnail_key(video_id: uuid.UUID) -> str:
    """A fresh key for an uploaded thumbnail: a new one per upload, so a browser or CDN
    that cached the previous image never shows it for the new one."""
    return f"{thumbnails_prefix(video_id)}{secrets.token_urlsafe(12)}.jpg"


def video_prefixes(video_id: uuid.UUID, job_ids: Iterable[uuid.UUID]) -> list[str]:
    """The prefixes a video owns besides its original: the outputs of every job seen for
    it, its uploaded captions and thumbnail images (what its deletion removes and its
    usage counts)."""
    return [
        *sorted(output_prefix(job) for job in set(job_ids)),
        captions_prefix(video_id),
        thumbnails_prefix(video_id),
    ]

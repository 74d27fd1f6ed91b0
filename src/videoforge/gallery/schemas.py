"""The gallery's wire format (pydantic), separate from the tables in :mod:`.models`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from videoforge.gallery.captions.schemas import AudioTrackRead, CaptionRead, ChapterRead
from videoforge.gallery.models import CommentPolicy, VideoStatus, Visibility
from videoforge.gallery.publishing import PublishMode, PublishState

TITLE_MAX = 200
DESCRIPTION_MAX = 5000


def _clean_text(value: str) -> str:
    # Control characters (other than newlines/tabs in descriptions) have no place in
    # titles and make listings misbehave; strip them rather than reject.
    return "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


_PUBLISH_DOC = (
    "When the video becomes public: `now`, `when_ready` (as soon as processing "
    "completes), `draft` (only you see it until you publish it) or `schedule` (at "
    "`publish_at`). Unset: `now` for a new video, unchanged for an edit."
)
_PUBLISH_AT_DOC = (
    "With `publish: schedule` (implied when only `publish_at` is sent): when to "
    "publish, with a time zone, in the future (422 `publish_at_in_past` otherwise) "
    "and at most two years ahead."
)


class _Publish(_Schema):
    publish: PublishMode | None = Field(None, description=_PUBLISH_DOC)
    publish_at: AwareDatetime | None = Field(None, description=_PUBLISH_AT_DOC)


class VideoSort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    MOST_VIEWED = "most_viewed"
    TITLE = "title"
    LIKES = "likes"


class VideoCreate(_Publish):
    """Create a video to be imported from a URL (the gateway calls this before the job)."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field("", max_length=DESCRIPTION_MAX)
    visibility: Visibility = Visibility.PRIVATE
    source_url: AnyHttpUrl

    @field_validator("title", "description")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _clean_text(value)

    @field_validator("source_url")
    @classmethod
    def _url_len(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(value)) > 2048:
            raise ValueError("must be at most 2048 characters")
        return value


class VideoUpdate(_Publish):
    """A partial edit: only the fields sent are changed (``exclude_unset``).

    ``version`` (or the ``If-Match`` header) makes the edit conditional: a stale
    version is refused with ``edit_conflict`` instead of overwriting someone's change.
    """

    title: str | None = Field(None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    visibility: Visibility | None = None
    #: Who may comment: ``on``, ``off``, or ``held`` for the owner's approval.
    comment_policy: CommentPolicy | None = None
    version: int | None = Field(None, ge=1, le=2**63 - 1)

    @field_validator("title", "description")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)


class RenditionRead(BaseModel):
    quality: str
    width: int
    height: int
    bandwidth: int


class ThumbnailChoice(StrEnum):
    AUTO = "auto"
    CANDIDATE = "candidate"
    CUSTOM = "custom"


class ThumbnailCandidateRead(BaseModel):
    number: int = Field(description="Pass it as `candidate` to choose this still.")
    url: str


class ThumbnailPick(_Schema):
    """Choose one of the stills the pipeline offered (``thumbnail_candidates``)."""

    candidate: int = Field(ge=1, le=9)


class VideoRead(BaseModel):
    """One video. ``s3_key`` and ``original_filename`` are only shown to the owner and admins."""

    id: uuid.UUID
    user_id: str
    #: The uploader's display name (never an e-mail address); null for older videos.
    owner_name: str | None = None
    title: str
    description: str
    visibility: Visibility
    status: VideoStatus
    progress: int
    failure_reason: str | None
    s3_key: str | None
    original_filename: str | None
    source_url: str | None
    duration: float | None
    resolution: str | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    file_size: int | None
    #: Bytes the video holds in storage (original, renditions, stills, captions): for
    #: its owner and admins only; null for everyone else and until first measured.
    storage_bytes: int | None = None
    thumbnail_url: str | None
    #: ``auto`` (the pipeline's pick), ``candidate`` (``thumbnail_candidate``) or
    #: ``custom`` (an image the owner uploaded).
    thumbnail_choice: ThumbnailChoice = ThumbnailChoice.AUTO
    thumbnail_candidate: int | None = None
    #: The stills the owner may choose from: for its owner and admins only.
    thumbnail_candidates: list[ThumbnailCandidateRead] = Field(default_factory=list)
    preview_url: str | None
    renditions: list[RenditionRead]
    views: int
    likes: int = 0
    dislikes: int = 0
    #: The caller's own rating (``like``/``dislike``); null when none or anonymous.
    my_rating: str | None = None
    #: Visible comments (approved, not deleted), replies included.
    comments_count: int = 0
    comment_policy: CommentPolicy = CommentPolicy.ON
    #: Hidden by a moderator (then only its owner and admins see it).
    hidden: bool = False
    #: ``published``, ``scheduled`` (public at ``publish_at``), ``when_ready``
    #: (public when processing completes) or ``draft``.
    publish_state: PublishState = PublishState.PUBLISHED
    #: When a scheduled video becomes (or became) public; null without a schedule.
    publish_at: datetime | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class VideoPage(BaseModel):
    """A page of videos. ``total`` is given with page numbers, counted up to 10,000:
    past that, ``total`` is 10,000 and ``total_exact`` is false ("10,000+").
    ``next_cursor`` always (null on the last page) — pass it back as ``cursor`` for the
    next page (cursor mode has no total)."""

    items: list[VideoRead]
    total: int | None
    total_exact: bool | None = None
    page: int | None
    per_page: int
    next_cursor: str | None


class StreamRendition(BaseModel):
    quality: str
    width: int
    height: int
    bandwidth: int
    url: str


class StreamUrls(BaseModel):
    """Short-lived playback URLs; ``original`` only for the owner.

    ``hls`` and ``dash`` are manifests served (and signed) by the gallery over the same
    CMAF segments; their alternate audio renditions are listed in ``audio_tracks``.
    ``captions`` are WebVTT files (also in both manifests), ``chapters_url`` a WebVTT
    chapters track of ``chapters``, ``storyboard`` a WebVTT thumbnails track whose cues
    point into signed sprite sheets (``…sprite_0.jpg?…#xywh=x,y,w,h``).
    """

    video_id: uuid.UUID
    hls: str | None
    dash: str | None = None
    renditions: list[StreamRendition]
    audio_tracks: list[AudioTrackRead] = Field(default_factory=list)
    captions: list[CaptionRead] = Field(default_factory=list)
    chapters: list[ChapterRead] = Field(default_factory=list)
    chapters_url: str | None = None
    storyboard: str | None = None
    thumbnail: str | None
    preview: str | None
    original: str | None
    expires_at: datetime


class ViewRecorded(BaseModel):
    counted: bool = Field(description="False when this viewer was already counted recently.")


class DailyViews(BaseModel):
    day: date
    views: int


class VideoAnalytics(BaseModel):
    video_id: uuid.UUID
    total_views: int
    days: list[DailyViews]


# -- uploads ---------------------------------------------------------------------
class UploadRequest(_Schema):
    """Ask for an upload URL. ``filename`` is kept as metadata only."""

    filename: str = Field(min_length=1, max_length=1024)
    content_type: str = Field(min_length=1, max_length=127)
    size: int = Field(ge=1)


class PartUrl(BaseModel):
    part_number: int
    url: str


class SingleUpload(BaseModel):
    """POST ``fields`` and then the file (as the last field, named ``file``) to ``url``."""

    url: str
    fields: dict[str, str]
    max_bytes: int


class MultipartUpload(BaseModel):
    """PUT each part (``part_size`` bytes, the last one shorter) to its URL, keep each
    response's ``ETag``, then call ``/api/upload/multipart/complete``."""

    upload_id: str
    part_size: int
    parts: list[PartUrl]


class UploadTicket(BaseModel):
    key: str
    expires_at: datetime
    single: SingleUpload | None
    multipart: MultipartUpload | None


class CompletedPartIn(_Schema):
    part_number: int = Field(ge=1, le=10000)
    etag: str = Field(min_length=1, max_length=256)


class MultipartComplete(_Schema):
    key: str = Field(max_length=1024)
    upload_id: str = Field(max_length=1024)
    parts: list[CompletedPartIn] = Field(min_length=1, max_length=10000)


class MultipartAbort(_Schema):
    key: str = Field(max_length=1024)
    upload_id: str = Field(max_length=1024)


class MultipartPartsRequest(_Schema):
    key: str = Field(max_length=1024)
    upload_id: str = Field(max_length=1024)
    part_numbers: list[int] = Field(min_length=1, max_length=10000)


class MultipartParts(BaseModel):
    parts: list[PartUrl]
    expires_at: datetime


class UploadConfirm(_Publish):
    key: str = Field(max_length=1024)
    title: str | None = Field(None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    visibility: Visibility | None = None

    @field_validator("title", "description")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)


class HealthCheck(BaseModel):
    status: str
    checks: dict[str, str]

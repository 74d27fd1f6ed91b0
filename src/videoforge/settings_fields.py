"""What :class:`~videoforge.settings.Settings` is made of: the value types, the
secrets refused, ``RATE_LIMITS``' grammar, and the groups of fields that belong to one
concern (accounts, storage and queues, mail, integrations, processing), as mixins.

The cross-field checks and derived values stay on ``Settings``; a group here only
declares its variables.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic_settings import NoDecode

#: Secrets printed in this repository's history (built-in and compose defaults it has
#: shipped): anyone can read them, so they are refused off loopback and in production.
DEV_JWT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - refused, never a default
PUBLISHED_SECRETS = frozenset(
    {DEV_JWT_SECRET, "compose-local-secret-change-me-0123456789abcdef", "change-me", "secret"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DatabaseBackend(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class StorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class QueueBackend(StrEnum):
    DATABASE = "database"
    SQS = "sqs"


class CacheBackend(StrEnum):
    MEMORY = "memory"
    REDIS = "redis"


class AuthBackend(StrEnum):
    LOCAL = "local"
    COGNITO = "cognito"


class EmailConfirmation(StrEnum):
    """``EMAIL_CONFIRMATION``: whether local sign-ups confirm their address by mail."""

    ON = "on"
    OFF = "off"
    #: On when SMTP is configured (mail then reaches people), off otherwise.
    AUTO = "auto"


class AccountFields(BaseModel):
    """Tokens, Cognito, admins, rate limits and what comments may not say."""

    #: Unset: each install generates its own into the data dir (``infra.secrets``).
    jwt_secret: str | None = Field(None, alias="JWT_SECRET")
    jwt_private_key_file: Path | None = Field(None, alias="JWT_PRIVATE_KEY_FILE")
    jwt_issuer: str = Field("videoforge", alias="JWT_ISSUER")
    jwt_audience: str = Field("videoforge", alias="JWT_AUDIENCE")
    access_token_ttl: int = Field(900, alias="ACCESS_TOKEN_TTL", ge=30)
    refresh_token_ttl: int = Field(30 * 24 * 3600, alias="REFRESH_TOKEN_TTL", ge=60)
    cognito_user_pool_id: str | None = Field(None, alias="COGNITO_USER_POOL_ID")
    cognito_client_id: str | None = Field(None, alias="COGNITO_CLIENT_ID")
    cognito_issuer: str | None = Field(None, alias="COGNITO_ISSUER")
    cognito_jwks_url: str | None = Field(None, alias="COGNITO_JWKS_URL")
    admin_group: str = Field("admin", alias="ADMIN_GROUP")

    rate_limits: str | None = Field(None, alias="RATE_LIMITS")
    #: Comments containing one of these (whole words, any case) wait for approval.
    comment_blocked_words: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="COMMENT_BLOCKED_WORDS"
    )


class StorageFields(BaseModel):
    """AWS, object storage, CDN, queues, uploads and stream URLs."""

    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")
    s3_bucket_name: str | None = Field(None, alias="S3_BUCKET_NAME")
    s3_path_style: bool = Field(False, alias="S3_PATH_STYLE")
    s3_public_endpoint_url: str | None = Field(None, alias="S3_PUBLIC_ENDPOINT_URL")
    #: Playback bytes through CloudFront (``infra.storage.cdn``): the distribution's URL,
    #: its key pair (key group) id and the private key (PEM, or a file holding it).
    cloudfront_url: str | None = Field(None, alias="CLOUDFRONT_URL")
    cloudfront_key_pair_id: str | None = Field(None, alias="CLOUDFRONT_KEY_PAIR_ID")
    cloudfront_private_key: str | None = Field(None, alias="CLOUDFRONT_PRIVATE_KEY")
    cloudfront_private_key_file: Path | None = Field(None, alias="CLOUDFRONT_PRIVATE_KEY_FILE")
    #: CDN URLs expire on multiples of this many seconds, so they can be shared and cached.
    cloudfront_url_window: int = Field(300, alias="CLOUDFRONT_URL_WINDOW", ge=1, le=86400)
    sqs_queue_url: str | None = Field(None, alias="SQS_QUEUE_URL")
    sqs_events_queue_url: str | None = Field(None, alias="SQS_EVENTS_QUEUE_URL")
    queue_max_receives: int = Field(5, alias="QUEUE_MAX_RECEIVES", ge=1)
    queue_visibility_timeout: int = Field(60, alias="QUEUE_VISIBILITY_TIMEOUT", ge=1)

    # -- uploads -------------------------------------------------------------
    upload_max_bytes: int = Field(5 * 1024**3, alias="UPLOAD_MAX_BYTES", ge=1)
    upload_multipart_threshold: int = Field(64 * 1024**2, alias="UPLOAD_MULTIPART_THRESHOLD")
    upload_part_size: int = Field(16 * 1024**2, alias="UPLOAD_PART_SIZE", ge=5 * 1024**2)
    upload_url_ttl: int = Field(3600, alias="UPLOAD_URL_TTL", ge=60)
    stream_url_ttl: int = Field(3600, alias="STREAM_URL_TTL", ge=30)


class MailFields(BaseModel):
    """Mail for local accounts: password reset and address confirmation."""

    #: Unset: no SMTP; mail is written as .eml files into ``<data dir>/mail/``.
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    #: Unset: 465 with ``SMTP_TLS``, else 587.
    smtp_port: int | None = Field(None, alias="SMTP_PORT", ge=1, le=65535)
    smtp_user: str | None = Field(None, alias="SMTP_USER")
    smtp_password: str | None = Field(None, alias="SMTP_PASSWORD")
    #: Unset: STARTTLS whenever the server offers it; true: required; false: never.
    smtp_starttls: bool | None = Field(None, alias="SMTP_STARTTLS")
    #: TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS.
    smtp_tls: bool = Field(False, alias="SMTP_TLS")
    smtp_timeout: float = Field(20.0, alias="SMTP_TIMEOUT", gt=0)
    mail_from: str | None = Field(None, alias="MAIL_FROM", max_length=320)
    email_confirmation: EmailConfirmation = Field(
        EmailConfirmation.AUTO, alias="EMAIL_CONFIRMATION"
    )
    #: How long a password-reset link works (seconds).
    password_reset_ttl: int = Field(3600, alias="PASSWORD_RESET_TTL", ge=60)
    #: How long an address-confirmation link works (seconds).
    email_confirmation_ttl: int = Field(48 * 3600, alias="EMAIL_CONFIRMATION_TTL", ge=60)


class EventFields(BaseModel):
    """Events for integrations: webhooks and EventBridge."""

    #: The EventBridge bus the gallery publishes lifecycle events to; unset or empty: none.
    eventbridge_bus_name: str | None = Field(None, alias="EVENTBRIDGE_BUS_NAME", max_length=256)
    #: Seconds one webhook delivery may take (connect, send, answer).
    webhook_timeout: float = Field(10.0, alias="WEBHOOK_TIMEOUT", gt=0, le=60)
    #: Ports a webhook URL may use (as IMPORT_ALLOWED_PORTS for imports).
    webhook_allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443], alias="WEBHOOK_ALLOWED_PORTS"
    )
    #: Retries: the first after about this many seconds, doubling (with jitter) up to
    #: WEBHOOK_RETRY_MAX_SECONDS, until WEBHOOK_RETRY_BUDGET_SECONDS after the event.
    webhook_retry_base_seconds: float = Field(30.0, alias="WEBHOOK_RETRY_BASE_SECONDS", gt=0)
    webhook_retry_max_seconds: float = Field(3600.0, alias="WEBHOOK_RETRY_MAX_SECONDS", gt=0)
    webhook_retry_budget_seconds: float = Field(86400.0, alias="WEBHOOK_RETRY_BUDGET_SECONDS", gt=0)


class ProcessingFields(BaseModel):
    """The processor's limits and tools."""

    max_concurrent_jobs: int = Field(1, alias="MAX_CONCURRENT_JOBS", ge=1, le=64)
    temp_dir: Path | None = Field(None, alias="TEMP_DIR")
    ffmpeg_threads: int = Field(0, alias="FFMPEG_THREADS", ge=0, le=64)
    ffmpeg_path: str = Field("ffmpeg", alias="FFMPEG_PATH")
    ffprobe_path: str = Field("ffprobe", alias="FFPROBE_PATH")
    transcode_timeout: int = Field(3600, alias="TRANSCODE_TIMEOUT", ge=1)
    #: EBU R128 target of every audio rendition (measured, then one constant gain).
    loudness_target: float = Field(-14.0, alias="LOUDNESS_TARGET", ge=-70, le=-5)
    loudness_true_peak: float = Field(-1.0, alias="LOUDNESS_TRUE_PEAK", ge=-9, le=0)
    #: A compatible H.264 source with keyframes at most this far apart (seconds) is copied
    #: as the top rung, not re-encoded; 0 re-encodes everything.
    remux_max_gop_seconds: float = Field(4.0, alias="REMUX_MAX_GOP_SECONDS", ge=0, le=60)
    #: A video longer than this (seconds) is encoded as parts, each its own job that any
    #: worker can take (issue 15); 0 never splits.
    chunk_min_seconds: float = Field(600.0, alias="CHUNK_MIN_SECONDS", ge=0)
    #: About how long each part is (seconds; cut on the segment grid, at a source keyframe).
    chunk_seconds: float = Field(90.0, alias="CHUNK_SECONDS", gt=0, le=3600)
    shutdown_grace_seconds: float = Field(30.0, alias="SHUTDOWN_GRACE_SECONDS", ge=0)
    import_max_bytes: int = Field(5 * 1024**3, alias="IMPORT_MAX_BYTES", ge=1)
    import_timeout: float = Field(1800.0, alias="IMPORT_TIMEOUT", gt=0)
    #: A job starts only with source size x this factor, plus the floor, free in TEMP_DIR.
    work_disk_factor: float = Field(3.0, alias="WORK_DISK_FACTOR", ge=1)
    #: Bytes always kept free in TEMP_DIR; below it the worker takes no job.
    work_disk_floor: int = Field(256 * 1024**2, alias="WORK_DISK_FLOOR", ge=0)
    metrics_port: int | None = Field(None, alias="METRICS_PORT", ge=1, le=65535)
    import_allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443], alias="IMPORT_ALLOWED_PORTS"
    )


#: The rate-limited actions (names accepted in ``RATE_LIMITS``). The gateway counts
#: accounts, mail, jobs and imports; the gallery counts its own actions (``upload_url``,
#: ``view``, ``video_create``, ``comment``, ``report``, ``playlist``: gallery/limits.py),
#: once, whichever way the request arrives.
RATE_LIMIT_ACTIONS = (
    "signup",
    "login",
    "upload_url",
    "job_create",
    "import",
    "view",
    "video_create",
    "comment",
    "report",
    "playlist",
    "password_forgot",
    "confirm_resend",
    "email_change",
)


def parse_rate_limits(spec: str) -> dict[str, tuple[int, int | None, int | None, int | None]]:
    """Parse ``RATE_LIMITS`` — comma-separated
    ``action=window:per_ip[:per_user[:per_user_ip]]`` (``-`` or left out: no limit), e.g.
    ``login=300:30:50:10,view=60:120`` — into ``{action: (window, per_ip, per_user,
    per_user_ip)}``; ``per_user`` counts a user's hits from every address together,
    ``per_user_ip`` a user's hits from one address. ValueError says what is wrong."""
    rules: dict[str, tuple[int, int | None, int | None, int | None]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in RATE_LIMIT_ACTIONS:
            raise ValueError(
                f"{item!r}: expected ACTION=WINDOW:PER_IP[:PER_USER[:PER_USER_IP]] with ACTION "
                "one of " + ", ".join(RATE_LIMIT_ACTIONS)
            )
        numbers = [n.strip() for n in value.split(":")]
        if len(numbers) not in (2, 3, 4):
            raise ValueError(f"{item!r}: expected WINDOW:PER_IP[:PER_USER[:PER_USER_IP]]")
        try:
            window = int(numbers[0])
            limits = [None if n == "-" else int(n) for n in numbers[1:]] + [None, None]
        except ValueError:
            raise ValueError(f"{item!r}: numbers (or - for no limit) expected") from None
        if window < 1 or any(n is not None and n < 1 for n in limits):
            raise ValueError(f"{item!r}: window and limits must be positive")
        rules[name] = (window, limits[0], limits[1], limits[2])
    return rules

"""Typed settings, read once from the environment (and an optional ``.env``).

The design's variable names are the interface (``DB_HOST``, ``S3_BUCKET_NAME``,
``SQS_QUEUE_URL``, ...). Where a backend's variables are unset, its embedded
stand-in is chosen: SQLite in the data directory, a local object store, the
database queue, local accounts and an in-process cache.

A wrong value fails at start-up with a message that names the variable
(:class:`SettingsError`).
"""

from __future__ import annotations

import ipaddress
import json
import os
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote_plus

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

#: Secrets printed in this repository's history (built-in and compose defaults it has
#: shipped): anyone can read them, so they are refused off loopback and in production.
DEV_JWT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - refused, never a default
PUBLISHED_SECRETS = frozenset(
    {DEV_JWT_SECRET, "compose-local-secret-change-me-0123456789abcdef", "change-me", "secret"}
)


class SettingsError(RuntimeError):
    """A configuration value is missing or invalid; the message names the variable."""


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


class Settings(BaseSettings):
    """Every setting of every service. Aliases are the design's environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # -- general -----------------------------------------------------------
    #: ``NODE_ENV`` (the design's name for it) is read too; ``VIDEOFORGE_ENV`` wins.
    environment: Environment = Field(
        Environment.DEVELOPMENT,
        alias="VIDEOFORGE_ENV",
        validation_alias=AliasChoices("VIDEOFORGE_ENV", "NODE_ENV"),
    )
    data_dir: Path = Field(Path("./data"), alias="VIDEOFORGE_DATA_DIR")
    port: int = Field(8000, alias="PORT", ge=1, le=65535)
    #: Processes of ``videoforge gallery``/``gateway`` (``--workers``); see ``web_workers``.
    web_concurrency: int | None = Field(None, alias="WEB_CONCURRENCY", ge=1, le=256)
    host: str = Field("127.0.0.1", alias="HOST")
    log_format: str = Field("auto", alias="LOG_FORMAT", pattern="^(auto|json|console)$")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    public_url: str | None = Field(None, alias="PUBLIC_URL")
    #: The name link previews and oEmbed give this install (``provider_name``, og:site_name).
    site_name: str = Field("VideoForge", alias="SITE_NAME", min_length=1, max_length=100)
    # NoDecode: lists come as comma-separated values (or JSON), split by _split_csv,
    # rather than pydantic-settings' JSON-only parsing.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="CORS_ORIGINS")
    #: Peers whose X-Forwarded-For/-Proto/-Host are believed (addresses, CIDRs or ``*``).
    #: Empty: nobody's, so a client can never choose its own address or host.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="FORWARDED_ALLOW_IPS"
    )
    #: ``/metrics`` on a service's own port answers only ``Authorization: Bearer`` this.
    metrics_token: str | None = Field(None, alias="METRICS_TOKEN", min_length=16)
    #: Where the separate metrics listener (``METRICS_PORT``) binds.
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")

    # -- database ------------------------------------------------------------
    database_url_override: str | None = Field(None, alias="DATABASE_URL")
    db_host: str | None = Field(None, alias="DB_HOST")
    db_port: int = Field(5432, alias="DB_PORT", ge=1, le=65535)
    db_name: str = Field("videoforge", alias="DB_NAME")
    db_user: str = Field("postgres", alias="DB_USER")
    db_password: str = Field("", alias="DB_PASSWORD")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE", ge=1)

    # -- AWS / object storage / queue ---------------------------------------
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

    # -- cache ----------------------------------------------------------------
    redis_url: str | None = Field(None, alias="REDIS_URL")
    #: Put before every key: deployments (or test runs) can share one Redis.
    redis_key_prefix: str = Field("", alias="REDIS_KEY_PREFIX", max_length=64)

    # -- auth ---------------------------------------------------------------
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

    # -- mail (local accounts: password reset, address confirmation) ----------
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

    # -- storage accounting -----------------------------------------------------
    #: Bytes each user may keep in storage (originals and every output); unset: no limit.
    #: Admins can set a per-user value that overrides it.
    storage_quota_bytes: int | None = Field(None, alias="STORAGE_QUOTA_BYTES", ge=0)

    # -- events for integrations (webhooks, EventBridge) -------------------------
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

    # -- services -------------------------------------------------------------
    gallery_url: str | None = Field(None, alias="GALLERY_URL")
    gateway_url: str | None = Field(None, alias="GATEWAY_URL")

    # -- processing -----------------------------------------------------------
    max_concurrent_jobs: int = Field(1, alias="MAX_CONCURRENT_JOBS", ge=1, le=64)
    temp_dir: Path | None = Field(None, alias="TEMP_DIR")
    ffmpeg_threads: int = Field(0, alias="FFMPEG_THREADS", ge=0, le=64)
    ffmpeg_path: str = Field("ffmpeg", alias="FFMPEG_PATH")
    ffprobe_path: str = Field("ffprobe", alias="FFPROBE_PATH")
    transcode_timeout: int = Field(3600, alias="TRANSCODE_TIMEOUT", ge=1)
    #: EBU R128 target of every audio rendition (two-pass linear loudnorm).
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

    @field_validator(
        "cors_origins",
        "import_allowed_ports",
        "webhook_allowed_ports",
        "forwarded_allow_ips",
        "comment_blocked_words",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().startswith("["):
                try:
                    return json.loads(value)
                except ValueError:
                    raise ValueError("must be a JSON list or comma-separated values") from None
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value.lower() == "off":
            return "off"
        parse_rate_limits(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url_override")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"sqlite", "postgres", "postgresql"} and not scheme.startswith(
            ("sqlite+", "postgresql+")
        ):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator(
        "aws_endpoint_url",
        "gallery_url",
        "gateway_url",
        "public_url",
        "cognito_jwks_url",
        "cloudfront_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an address, a CIDR or *") from None
        return value

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            # Every instance of a fleet must share it: a per-machine generated one would not do.
            if not self.jwt_secret or self.jwt_secret in PUBLISHED_SECRETS:
                raise ValueError("JWT_SECRET must be set to a secret value in production")
            if len(self.jwt_secret) < 32:
                raise ValueError("JWT_SECRET must be at least 32 characters in production")
        if self.cloudfront_url:
            if not self.s3_bucket_name:
                raise ValueError(
                    "CLOUDFRONT_URL needs S3_BUCKET_NAME: the CDN's origin is the bucket"
                )
            if not self.cloudfront_key_pair_id:
                raise ValueError(
                    "CLOUDFRONT_URL needs CLOUDFRONT_KEY_PAIR_ID (the public key's id)"
                )
            if bool(self.cloudfront_private_key) == bool(self.cloudfront_private_key_file):
                raise ValueError(
                    "CLOUDFRONT_URL needs one of CLOUDFRONT_PRIVATE_KEY (PEM) or "
                    "CLOUDFRONT_PRIVATE_KEY_FILE"
                )
        if self.sqs_queue_url and not self.sqs_events_queue_url:
            raise ValueError(
                "SQS_EVENTS_QUEUE_URL must be set with SQS_QUEUE_URL: the processor reports "
                "job state on that queue and the gallery reads it (both on SQS, or neither)"
            )
        if bool(self.cognito_user_pool_id) != bool(self.cognito_client_id):
            raise ValueError("COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID must be set together")
        return self

    def cloudfront_private_key_pem(self) -> bytes:
        """The CDN signing key's PEM bytes (``SettingsError`` when it cannot be read)."""
        if self.cloudfront_private_key:
            # Secrets stores and env files often flatten newlines to a literal "\n".
            return self.cloudfront_private_key.replace("\\n", "\n").encode()
        assert self.cloudfront_private_key_file is not None
        try:
            return self.cloudfront_private_key_file.read_bytes()
        except OSError as exc:
            raise SettingsError(f"CLOUDFRONT_PRIVATE_KEY_FILE: cannot read it: {exc}") from None

    def require_safe_to_listen(self) -> None:
        """Refuse to serve HTTP off loopback with a published secret or without
        ``PUBLIC_URL`` (links would otherwise follow whatever ``Host`` a client sent)."""
        if is_loopback(self.host):
            return
        problems = []
        if self.jwt_secret in PUBLISHED_SECRETS:
            problems.append(
                "JWT_SECRET: this value is published in VideoForge's source; unset it (each "
                "install then generates its own) or set a random one, e.g. openssl rand -hex 32"
            )
        if not self.public_url:
            problems.append(
                f"PUBLIC_URL: required when listening on {self.host} (not loopback): the URL "
                "clients reach this site at, e.g. https://videos.example.com"
            )
        if problems:
            raise SettingsError("refusing to listen: " + "; ".join(problems))

    # -- derived ---------------------------------------------------------------
    @property
    def database_backend(self) -> DatabaseBackend:
        url = self.database_url
        return DatabaseBackend.SQLITE if url.startswith("sqlite") else DatabaseBackend.POSTGRES

    @property
    def database_url(self) -> str:
        """The async SQLAlchemy URL for the configured database."""
        if self.database_url_override:
            return _async_driver(self.database_url_override)
        if self.db_host:
            password = f":{quote_plus(self.db_password)}" if self.db_password else ""
            return (
                f"postgresql+asyncpg://{quote_plus(self.db_user)}{password}"
                f"@{self.db_host}:{self.db_port}/{self.db_name}"
            )
        return f"sqlite+aiosqlite:///{(self.data_dir / 'videoforge.db').resolve()}"

    @property
    def web_workers(self) -> int:
        """``WEB_CONCURRENCY``, else one process per core on PostgreSQL and one on
        SQLite (a single writer: more processes would only queue on its lock)."""
        if self.web_concurrency is not None:
            return self.web_concurrency
        if self.database_backend is DatabaseBackend.SQLITE:
            return 1
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    @property
    def storage_backend(self) -> StorageBackend:
        return StorageBackend.S3 if self.s3_bucket_name else StorageBackend.LOCAL

    @property
    def queue_backend(self) -> QueueBackend:
        return QueueBackend.SQS if self.sqs_queue_url else QueueBackend.DATABASE

    @property
    def cache_backend(self) -> CacheBackend:
        return CacheBackend.REDIS if self.redis_url else CacheBackend.MEMORY

    @property
    def auth_backend(self) -> AuthBackend:
        return AuthBackend.COGNITO if self.cognito_user_pool_id else AuthBackend.LOCAL

    @property
    def confirms_email(self) -> bool:
        """Whether local sign-ups must confirm their address (``EMAIL_CONFIRMATION``)."""
        if self.email_confirmation is EmailConfirmation.AUTO:
            return bool(self.smtp_host)
        return self.email_confirmation is EmailConfirmation.ON

    @property
    def mail_dir(self) -> Path:
        """Where mail goes as .eml files when no SMTP server is configured."""
        return self.data_dir / "mail"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def work_dir(self) -> Path:
        """Where per-job temp directories are made (``TEMP_DIR`` or the data dir)."""
        return self.temp_dir if self.temp_dir else self.data_dir / "tmp"

    @cached_property
    def resolved_cognito_issuer(self) -> str | None:
        if self.cognito_issuer:
            return self.cognito_issuer.rstrip("/")
        if self.cognito_user_pool_id:
            return (
                f"https://cognito-idp.{self.aws_region}.amazonaws.com/{self.cognito_user_pool_id}"
            )
        return None

    @property
    def resolved_cognito_jwks_url(self) -> str | None:
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        issuer = self.resolved_cognito_issuer
        return f"{issuer}/.well-known/jwks.json" if issuer else None


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


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _async_driver(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise :class:`SettingsError` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"])
            if loc == "VIDEOFORGE_ENV" and "VIDEOFORGE_ENV" not in os.environ:
                loc = "NODE_ENV" if "NODE_ENV" in os.environ else loc
            # Cross-field checks (no location) already name their variables.
            problems.append(f"{loc.upper()}: {message}" if loc else message)
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
    except SourceError as exc:
        # A value the environment source could not even decode.
        raise SettingsError(f"invalid configuration: {exc}") from None

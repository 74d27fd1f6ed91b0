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
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote_plus

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from videoforge.settings_fields import (
    DEV_JWT_SECRET,
    PUBLISHED_SECRETS,
    RATE_LIMIT_ACTIONS,
    AccountFields,
    AuthBackend,
    CacheBackend,
    DatabaseBackend,
    EmailConfirmation,
    Environment,
    EventFields,
    MailFields,
    ProcessingFields,
    QueueBackend,
    StorageBackend,
    StorageFields,
    parse_rate_limits,
)

__all__ = [
    "DEV_JWT_SECRET",
    "PUBLISHED_SECRETS",
    "RATE_LIMIT_ACTIONS",
    "AuthBackend",
    "CacheBackend",
    "DatabaseBackend",
    "EmailConfirmation",
    "Environment",
    "QueueBackend",
    "Settings",
    "SettingsError",
    "StorageBackend",
    "is_loopback",
    "load_settings",
    "parse_rate_limits",
]


#: The shortest JWT_SECRET accepted in production or off loopback.
MIN_SECRET_CHARS = 32


class SettingsError(RuntimeError):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(
    AccountFields, StorageFields, MailFields, EventFields, ProcessingFields, BaseSettings
):
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
    #: Anonymous listing pages each gallery process keeps, invalidated by every change
    #: (PostgreSQL only: gallery.listing_cache); 0 keeps none.
    listing_cache_entries: int = Field(2048, alias="LISTING_CACHE_ENTRIES", ge=0, le=100_000)
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

    # -- cache ----------------------------------------------------------------
    redis_url: str | None = Field(None, alias="REDIS_URL")
    #: Put before every key: deployments (or test runs) can share one Redis.
    redis_key_prefix: str = Field("", alias="REDIS_KEY_PREFIX", max_length=64)

    # -- storage accounting -----------------------------------------------------
    #: Bytes each user may keep in storage (originals and every output); unset: no limit.
    #: Admins can set a per-user value that overrides it.
    storage_quota_bytes: int | None = Field(None, alias="STORAGE_QUOTA_BYTES", ge=0)

    # -- services -------------------------------------------------------------
    gallery_url: str | None = Field(None, alias="GALLERY_URL")
    gateway_url: str | None = Field(None, alias="GATEWAY_URL")

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
            if len(self.jwt_secret) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"JWT_SECRET must be at least {MIN_SECRET_CHARS} characters in production"
                )
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
        """Refuse to serve HTTP off loopback with a published or short secret, or without
        ``PUBLIC_URL`` (links would otherwise follow whatever ``Host`` a client sent)."""
        if is_loopback(self.host):
            return
        problems = []
        if self.jwt_secret in PUBLISHED_SECRETS:
            problems.append(
                "JWT_SECRET: this value is published in VideoForge's source; unset it (each "
                "install then generates its own) or set a random one, e.g. openssl rand -hex 32"
            )
        elif self.jwt_secret is not None and len(self.jwt_secret) < MIN_SECRET_CHARS:
            # Short enough to guess offline from one signed URL, as production refuses.
            problems.append(
                f"JWT_SECRET: at least {MIN_SECRET_CHARS} characters when listening on "
                f"{self.host}; unset it (each install then generates its own) or set a "
                "random one, e.g. openssl rand -hex 32"
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

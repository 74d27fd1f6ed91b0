"""Settings: embedded defaults, backends chosen from the documented variables, and clear
errors that name the variable at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoforge.settings import (
    DEV_JWT_SECRET,
    AuthBackend,
    CacheBackend,
    DatabaseBackend,
    Environment,
    QueueBackend,
    Settings,
    SettingsError,
    StorageBackend,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Nothing from the developer's environment; cwd is an empty directory, so a stray
    ``.env`` cannot leak in either."""
    monkeypatch.chdir(tmp_path)
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    monkeypatch.delenv("NODE_ENV", raising=False)
    return monkeypatch


def test_embedded_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("VIDEOFORGE_DATA_DIR", str(tmp_path / "vf"))
    s = load_settings()
    assert s.environment is Environment.DEVELOPMENT
    assert s.database_backend is DatabaseBackend.SQLITE
    assert s.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'vf' / 'videoforge.db').resolve()}"
    assert s.storage_backend is StorageBackend.LOCAL
    assert s.storage_dir == tmp_path / "vf" / "objects"
    assert s.queue_backend is QueueBackend.DATABASE
    assert s.cache_backend is CacheBackend.MEMORY
    assert s.auth_backend is AuthBackend.LOCAL
    assert s.jwt_secret is None  # each install generates its own (infra.secrets)
    assert s.port == 8000
    assert s.max_concurrent_jobs == 1
    assert s.work_dir == tmp_path / "vf" / "tmp"


def test_default_data_dir_is_relative_to_cwd(tmp_path: Path) -> None:
    s = load_settings()
    assert (
        s.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'videoforge.db').resolve()}"
    )


def test_postgres_from_db_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DB_HOST", "db.internal")
    clean_env.setenv("DB_PORT", "6543")
    clean_env.setenv("DB_NAME", "vf")
    clean_env.setenv("DB_USER", "app")
    clean_env.setenv("DB_PASSWORD", "p@ss:w/rd")
    s = load_settings()
    assert s.database_backend is DatabaseBackend.POSTGRES
    # The password is URL-quoted, so special characters cannot break the URL.
    assert s.database_url == "postgresql+asyncpg://app:p%40ss%3Aw%2Frd@db.internal:6543/vf"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:////var/lib/vf.db", "sqlite+aiosqlite:////var/lib/vf.db"),
    ],
)
def test_database_url_wins_and_gets_the_async_driver(
    clean_env: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    clean_env.setenv("DB_HOST", "ignored-when-database-url-is-set")
    clean_env.setenv("DATABASE_URL", url)
    s = load_settings()
    assert s.database_url == expected
    expected_backend = (
        DatabaseBackend.SQLITE if url.startswith("sqlite") else DatabaseBackend.POSTGRES
    )
    assert s.database_backend is expected_backend


def test_aws_backends_from_their_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("S3_BUCKET_NAME", "videos")
    clean_env.setenv("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/jobs")
    clean_env.setenv("SQS_EVENTS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/events")
    clean_env.setenv("AWS_REGION", "eu-west-1")
    clean_env.setenv("REDIS_URL", "rediss://cache.internal:6379/0")
    clean_env.setenv("COGNITO_USER_POOL_ID", "eu-west-1_abc")
    clean_env.setenv("COGNITO_CLIENT_ID", "client123")
    s = load_settings()
    assert s.storage_backend is StorageBackend.S3
    assert s.s3_bucket_name == "videos"
    assert s.queue_backend is QueueBackend.SQS
    assert s.sqs_events_queue_url == "https://sqs.eu-west-1.amazonaws.com/1/events"
    assert s.cache_backend is CacheBackend.REDIS
    assert s.auth_backend is AuthBackend.COGNITO
    assert s.resolved_cognito_issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
    assert s.resolved_cognito_jwks_url == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
    )


def test_list_variables_accept_csv_and_json(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    clean_env.setenv("IMPORT_ALLOWED_PORTS", "[80, 443, 8080]")
    s = load_settings()
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.import_allowed_ports == [80, 443, 8080]


def test_production_accepts_a_real_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("VIDEOFORGE_ENV", "production")
    clean_env.setenv("JWT_SECRET", "x" * 40)
    assert load_settings().environment is Environment.PRODUCTION


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"DB_PORT": "-1"}, "DB_PORT"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"DATABASE_URL": "mysql://u:p@h/d"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresfoo://h/d"}, "DATABASE_URL"),
        ({"AWS_ENDPOINT_URL": "localhost:4566"}, "AWS_ENDPOINT_URL"),
        ({"COGNITO_USER_POOL_ID": "pool"}, "COGNITO_CLIENT_ID"),
        ({"COGNITO_CLIENT_ID": "client"}, "COGNITO_USER_POOL_ID"),
        ({"VIDEOFORGE_ENV": "production"}, "JWT_SECRET"),
        ({"VIDEOFORGE_ENV": "production", "JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"VIDEOFORGE_ENV": "production", "JWT_SECRET": DEV_JWT_SECRET}, "JWT_SECRET"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.internal"}, "FORWARDED_ALLOW_IPS"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"SQS_QUEUE_URL": "http://sqs.example/1/jobs"}, "SQS_EVENTS_QUEUE_URL"),
        ({"NODE_ENV": "staging"}, "NODE_ENV"),
        ({"VIDEOFORGE_ENV": "staging"}, "VIDEOFORGE_ENV"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"MAX_CONCURRENT_JOBS": "0"}, "MAX_CONCURRENT_JOBS"),
        ({"IMPORT_ALLOWED_PORTS": "80,http"}, "IMPORT_ALLOWED_PORTS"),
        ({"CORS_ORIGINS": "[not json"}, "CORS_ORIGINS"),
    ],
)
def test_bad_values_name_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    with pytest.raises(SettingsError, match=variable) as caught:
        load_settings()
    assert "Traceback" not in str(caught.value)


def test_stray_dotenv_in_cwd_is_read_only_from_cwd(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The fixture's cwd is tmp_path: a .env there is read (the documented behaviour)...
    (tmp_path / ".env").write_text("PORT=4321\n")
    assert load_settings().port == 4321
    # ...and one anywhere else is not.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    assert load_settings().port == 8000
    # The environment beats the file.
    clean_env.chdir(tmp_path)
    clean_env.setenv("PORT", "5555")
    assert load_settings().port == 5555


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_may_listen_on_any_secret_and_no_public_url(
    clean_env: pytest.MonkeyPatch, host: str
) -> None:
    clean_env.setenv("JWT_SECRET", DEV_JWT_SECRET)
    load_settings(HOST=host).require_safe_to_listen()


@pytest.mark.parametrize("environment", ["development", "test"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_off_loopback_the_published_secret_is_refused_in_every_environment(
    clean_env: pytest.MonkeyPatch, host: str, environment: str
) -> None:
    clean_env.setenv("VIDEOFORGE_ENV", environment)
    clean_env.setenv("JWT_SECRET", DEV_JWT_SECRET)
    clean_env.setenv("PUBLIC_URL", "https://videos.example.com")
    with pytest.raises(SettingsError, match="JWT_SECRET") as caught:
        load_settings(HOST=host).require_safe_to_listen()
    assert DEV_JWT_SECRET not in str(caught.value)


@pytest.mark.parametrize("environment", ["development", "test"])
def test_off_loopback_a_short_secret_is_refused_in_every_environment(
    clean_env: pytest.MonkeyPatch, environment: str
) -> None:
    clean_env.setenv("VIDEOFORGE_ENV", environment)
    clean_env.setenv("PUBLIC_URL", "https://videos.example.com")
    clean_env.setenv("JWT_SECRET", "k" * 31)
    with pytest.raises(SettingsError, match="at least 32 characters") as caught:
        load_settings(HOST="0.0.0.0").require_safe_to_listen()
    assert "k" * 31 not in str(caught.value)
    load_settings(HOST="127.0.0.1").require_safe_to_listen()  # on loopback: the user's own
    clean_env.setenv("JWT_SECRET", "k" * 32)
    load_settings(HOST="0.0.0.0").require_safe_to_listen()


def test_off_loopback_public_url_is_required(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        load_settings(HOST="0.0.0.0").require_safe_to_listen()
    clean_env.setenv("PUBLIC_URL", "https://videos.example.com")
    load_settings(HOST="0.0.0.0").require_safe_to_listen()  # generated secret, public URL: fine


@pytest.mark.parametrize(("node_env", "expected"), [("production", "production"), ("test", "test")])
def test_node_env_is_read_as_the_environment(
    clean_env: pytest.MonkeyPatch, node_env: str, expected: str
) -> None:
    clean_env.setenv("NODE_ENV", node_env)
    clean_env.setenv("JWT_SECRET", "x" * 40)
    assert load_settings().environment == expected
    clean_env.setenv("VIDEOFORGE_ENV", "development")  # the project's own name wins
    assert load_settings().environment is Environment.DEVELOPMENT


def test_every_variable_is_in_the_operations_guide() -> None:
    """docs/operations.md is where operators look variables up: each setting is there."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    missing = [
        field.alias
        for field in Settings.model_fields.values()
        if field.alias and f"`{field.alias}`" not in guide
    ]
    assert missing == []

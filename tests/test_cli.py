"""The ``videoforge`` command, run as the installed entry point in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import inspect
from typer.core import TyperGroup

from videoforge import migrations
from videoforge.cli import app
from videoforge.infra.db import create_engine
from videoforge.migrations import check_migrated
from videoforge.settings import Settings

VIDEOFORGE = Path(sys.executable).with_name("videoforge")


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The parent environment minus every VideoForge variable, plus ``extra``."""
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIDEOFORGE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line_helps(group: Any) -> dict[str, str]:
    """Every subcommand of a (typer-built) command group and its one-line help."""
    return {name: command.get_short_help_str(limit=200) for name, command in group.commands.items()}


def test_help_lists_every_subcommand_with_one_line_help(tmp_path: Path) -> None:
    group = typer.main.get_command(app)
    helps = _one_line_helps(group)
    # The commands the README and deployment rely on.
    assert {"serve", "gateway", "gallery", "worker", "migrate", "sweep", "users"} <= set(helps)

    result = _run(["--help"], tmp_path, _clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for name, short_help in helps.items():
        assert short_help, f"`{name}` has no help text"
        lines = [line for line in result.stdout.splitlines() if f" {name} " in line]
        assert lines, f"`{name}` missing from --help:\n{result.stdout}"
        assert short_help[:40] in lines[0], f"`{name}`'s help line: {lines[0]!r}"

    assert isinstance(group, TyperGroup)
    users = group.commands["users"]
    result = _run(["users", "--help"], tmp_path, _clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for name, short_help in _one_line_helps(users).items():
        assert short_help, f"`users {name}` has no help text"
        assert name in result.stdout


def test_migrate_creates_and_migrates_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _clean_env(tmp_path, VIDEOFORGE_DATA_DIR=str(data_dir))
    result = _run(["migrate"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    head = migrations.head_revision()
    assert f"database at {head}" in result.stdout

    db_file = data_dir / "videoforge.db"
    assert db_file.exists()
    url = f"sqlite+aiosqlite:///{db_file}"

    async def inspect_db() -> set[str]:
        engine = create_engine(url)
        try:
            await check_migrated(engine)  # the services' start-up check passes
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    assert "queue_messages" in asyncio.run(inspect_db())

    again = _run(["migrate"], tmp_path, env)  # safe to run again
    assert again.returncode == 0, again.stderr
    assert f"database at {head}" in again.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"PORT": "abc"}, "PORT"), ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL")],
)
def test_bad_configuration_fails_clearly(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = _run(["migrate"], tmp_path, _clean_env(tmp_path, **env))
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "gateway", "gallery"])
@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"JWT_SECRET": "dev-insecure-secret-change-me", "PUBLIC_URL": "https://v.example"},
            "JWT_SECRET",
        ),
        ({}, "PUBLIC_URL"),
    ],
)
def test_serving_off_loopback_refuses_a_published_secret_or_no_public_url(
    tmp_path: Path, command: str, env: dict[str, str], variable: str
) -> None:
    result = _run([command, "--host", "0.0.0.0"], tmp_path, _clean_env(tmp_path, **env))
    assert result.returncode == 2, result.stderr
    assert "refusing to listen" in result.stderr
    assert variable in result.stderr
    assert "Traceback" not in result.stderr

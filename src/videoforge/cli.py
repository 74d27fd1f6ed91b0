"""The ``videoforge`` command. Each subcommand reads settings and hands over to its service.

Services are imported lazily, inside each command, so that ``videoforge --help`` is fast
and a broken optional piece cannot stop the others from starting.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from videoforge.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="VideoForge: a self-hostable video platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Manage local accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")

HostOpt = Annotated[str | None, typer.Option(help="Address to bind (default: HOST or 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option(help="Port to bind (default: PORT).")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Processes (default: WEB_CONCURRENCY, else one per core on PostgreSQL, 1 on SQLite).",
    ),
]


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _listening(**overrides: object) -> Settings:
    """Settings for a command that serves HTTP: also refused when unsafe to listen."""
    settings = _settings(**overrides)
    try:
        settings.require_safe_to_listen()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the whole platform on this machine (embedded backends, one port, child workers)."""
    from videoforge.embedded import serve as run_serve

    run_serve(_listening(HOST=host, PORT=port))


@app.command()
def gateway(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = None) -> None:
    """Run the API Gateway: accounts, jobs, live progress, rate limits, the web client."""
    from videoforge.gateway.main import run

    run(_listening(HOST=host, PORT=port or _default_port(3000), WEB_CONCURRENCY=workers))


@app.command()
def gallery(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = None) -> None:
    """Run the Gallery: listing, search, metadata, upload and stream URLs, views."""
    from videoforge.gallery.main import run

    run(_listening(HOST=host, PORT=port or _default_port(5000), WEB_CONCURRENCY=workers))


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once (default: MAX_CONCURRENT_JOBS).")
    ] = None,
) -> None:
    """Run a Video Processor worker: consume the jobs queue and transcode."""
    from videoforge.processor.worker import run

    run(_settings(MAX_CONCURRENT_JOBS=concurrency))


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (safe to run again)."""
    from videoforge import migrations

    settings = _settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {migrations.current(settings.database_url)}")


@app.command()
def transcode(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="A local video file.")],
    outdir: Annotated[Path, typer.Argument(metavar="OUTDIR", help="Where outputs go.")],
) -> None:
    """Run the processing pipeline on a local file (no queue, database or object store)."""
    from videoforge.processor.transcode_cli import transcode_file

    code = transcode_file(_settings(), input_path, outdir)
    raise typer.Exit(code)


@app.command()
def sweep() -> None:
    """Remove stale temp dirs and orphaned objects; re-enqueue jobs stuck in PENDING."""
    from videoforge.sweep import run

    report = run(_settings())
    for name, value in report.items():
        typer.echo(f"{name}: {value}")


@users_app.command("grant-admin")
def users_grant_admin(email: str) -> None:
    """Add a local account to the admin group."""
    from videoforge.gateway.main import set_admin

    if not set_admin(_settings(), email, admin=True):
        raise _fail(f"no account with e-mail {email}")
    typer.echo(f"{email} is now an admin")


@users_app.command("revoke-admin")
def users_revoke_admin(email: str) -> None:
    """Remove a local account from the admin group."""
    from videoforge.gateway.main import set_admin

    if not set_admin(_settings(), email, admin=False):
        raise _fail(f"no account with e-mail {email}")
    typer.echo(f"{email} is no longer an admin")


@users_app.command("list")
def users_list() -> None:
    """List local accounts."""
    from videoforge.gateway.main import list_users

    for line in list_users(_settings()):
        typer.echo(line)


def _default_port(port: int) -> int | None:
    import os

    return None if os.environ.get("PORT") else port


def main() -> None:  # pragma: no cover - entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]

"""Entry points of ``videoforge gateway`` and ``videoforge users …``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from videoforge.gateway.accounts import commands
from videoforge.infra.db import create_engine, session_factory
from videoforge.migrations import check_migrated
from videoforge.settings import AuthBackend, Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_PORT = 3000


def build(settings: Settings) -> FastAPI:
    """The gateway app on its own backends (built in its lifespan)."""
    from videoforge.gateway.app import create_app

    return create_app(settings)


def from_env() -> FastAPI:
    """The app factory each process of ``--workers N`` starts from."""
    from videoforge.infra import heap, tracing
    from videoforge.infra.logging import configure_logging

    settings = load_settings()
    configure_logging(settings, service="gateway")
    tracing.configure("gateway")
    return heap.settle_after_startup(build(settings))


def run(settings: Settings) -> None:
    """Serve the gateway with uvicorn (port from ``PORT``, 3000 by default via the CLI)."""
    from videoforge.infra.http import run_app

    run_app("videoforge.gateway.main:build", settings=settings, service="gateway")


async def _with_accounts(settings: Settings, action: str, *args: object) -> object:
    if settings.auth_backend is AuthBackend.COGNITO:
        raise RuntimeError(
            "accounts live in the Cognito user pool: manage groups there "
            f"(e.g. `aws cognito-idp admin-add-user-to-group --group-name {settings.admin_group}`)"
        )
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await check_migrated(engine)
        sessions = session_factory(engine)
        if action == "set_admin":
            email, admin = args
            return await commands.set_admin(sessions, str(email), bool(admin))
        rows = await commands.list_accounts(sessions)
        return [
            "\t".join(
                [
                    row.email,
                    settings.admin_group if row.is_admin else "-",
                    row.display_name or "",
                    row.created_at.isoformat(timespec="seconds"),
                ]
            )
            for row in rows
        ]
    finally:
        await engine.dispose()


def set_admin(settings: Settings, email: str, admin: bool) -> bool:
    """Grant (``admin=True``) or revoke the admin group; False if no such account."""
    return bool(asyncio.run(_with_accounts(settings, "set_admin", email, admin)))


def list_users(settings: Settings) -> list[str]:
    """One line per local account: e-mail, group, display name, created (tab-separated)."""
    result = asyncio.run(_with_accounts(settings, "list"))
    assert isinstance(result, list)
    return [str(line) for line in result]

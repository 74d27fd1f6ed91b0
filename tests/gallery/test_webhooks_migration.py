"""Migration 0014 creates exactly what the lifecycle outbox and webhook models describe
(autogenerate finds nothing to change for their tables), and drops them again."""

from __future__ import annotations

from ..migration_diff import assert_migration_matches_models

TABLES = {"gallery_lifecycle_events", "gallery_webhooks", "gallery_webhook_deliveries"}


def test_the_migration_matches_the_models(database_url: str) -> None:
    assert_migration_matches_models(database_url, TABLES, previous="0013")

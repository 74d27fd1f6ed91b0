"""One-shot bootstrap for the compose setup, run after ``videoforge migrate``.

Creates what the AWS stack would own: the S3 bucket (with browser-upload CORS) and the
SQS jobs and events queues with their dead-letter queues, on the S3/SQS-compatible
service; and the gateway's local-account signing key in the shared key volume, once,
so that every gateway replica signs with the same key. Safe to run again.
"""

from __future__ import annotations

import asyncio

from videoforge.infra.auth.keys import local_signing_key
from videoforge.infra.queue.sqs import ensure_sqs_queues, sqs_client
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.settings import load_settings


async def bootstrap() -> None:
    settings = load_settings()
    if settings.s3_bucket_name:
        storage = S3Storage.from_settings(settings)
        await storage.ensure_bucket(settings.cors_origins or ["*"])
        print(f"bucket {settings.s3_bucket_name}: ready", flush=True)
    if settings.sqs_queue_url and settings.sqs_events_queue_url:
        client = sqs_client(settings)
        for url in (settings.sqs_queue_url, settings.sqs_events_queue_url):
            name = url.rstrip("/").rsplit("/", 1)[-1]
            await ensure_sqs_queues(
                client, name, settings.queue_max_receives, settings.queue_visibility_timeout
            )
            print(f"queue {name} (+ dead-letter queue): ready", flush=True)
    local_signing_key(settings)
    print("signing key: ready", flush=True)


if __name__ == "__main__":
    asyncio.run(bootstrap())

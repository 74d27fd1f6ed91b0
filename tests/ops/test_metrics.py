"""Scrape-time collectors, the queue depth collector on a real queue, and the worker's
metrics server."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import Counter

from videoforge.infra import metrics
from videoforge.infra.queue import build_queues
from videoforge.settings import load_settings


@pytest.fixture
def collector_name() -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:8]}"
    yield name
    metrics.unregister_collector(name)


def _value(text: str, sample: str) -> float | None:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_collectors_run_on_every_scrape(collector_name: str) -> None:
    calls = 0

    async def collect() -> None:
        nonlocal calls
        calls += 1
        metrics.set_jobs_by_state({"PENDING": 3 * calls, "COMPLETED": 10})

    metrics.register_collector(collector_name, collect)
    first = (await metrics.render_latest()).decode()
    second = (await metrics.render_latest()).decode()

    assert calls == 2
    assert _value(first, 'videoforge_jobs{state="PENDING"}') == 3.0
    assert _value(second, 'videoforge_jobs{state="PENDING"}') == 6.0
    assert _value(second, 'videoforge_jobs{state="COMPLETED"}') == 10.0

    # A state that disappears from the counts drops to zero instead of vanishing.
    metrics.unregister_collector(collector_name)
    metrics.set_jobs_by_state({"PENDING": 1})
    third = (await metrics.render_latest()).decode()
    assert _value(third, 'videoforge_jobs{state="COMPLETED"}') == 0.0
    assert calls == 2


async def test_failing_or_slow_collector_does_not_break_the_scrape(
    collector_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "COLLECTOR_TIMEOUT_SECONDS", 0.2)
    ok_name, slow_name = collector_name + "_ok", collector_name + "_slow"

    async def broken() -> None:
        raise ConnectionError("database is down")

    async def slow() -> None:
        await asyncio.sleep(30)

    async def fine() -> None:
        metrics.set_queue_depth(ok_name, 4)

    metrics.register_collector(collector_name, broken)
    metrics.register_collector(slow_name, slow)
    metrics.register_collector(ok_name, fine)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        text = (await metrics.render_latest()).decode()
        elapsed = loop.time() - started
    finally:
        metrics.unregister_collector(slow_name)
        metrics.unregister_collector(ok_name)

    assert elapsed < 5
    assert _value(text, f'videoforge_queue_depth{{queue="{ok_name}"}}') == 4.0
    errors = "videoforge_metrics_collector_errors_total"
    assert _value(text, f'{errors}{{collector="{collector_name}"}}') == 1.0
    assert _value(text, f'{errors}{{collector="{slow_name}"}}') == 1.0


async def test_queue_depth_collector_reads_a_real_queue(
    database_url: str, collector_name: str
) -> None:
    from videoforge.infra.db import create_engine

    engine = create_engine(database_url, pool_size=2)
    try:
        queues = build_queues(load_settings(), engine)
        for n in range(3):
            await queues.jobs.send(f'{{"n": {n}}}')
        await queues.events.send('{"e": 1}')
        metrics.register_collector(collector_name, metrics.queue_depth_collector(queues))
        text = (await metrics.render_latest()).decode()
        assert _value(text, 'videoforge_queue_depth{queue="jobs"}') == 3.0
        assert _value(text, 'videoforge_queue_depth{queue="events"}') == 1.0

        # An in-flight message is not visible, so it leaves the depth.
        (received,) = await queues.jobs.receive(max_messages=1, wait_seconds=0)
        text = (await metrics.render_latest()).decode()
        assert _value(text, 'videoforge_queue_depth{queue="jobs"}') == 2.0
        await queues.jobs.delete(received.receipt)
    finally:
        metrics.unregister_collector(collector_name)
        await engine.dispose()


async def test_worker_metrics_server_serves_registry_and_refreshes_collectors(
    collector_name: str,
) -> None:
    # What the processor does: declare its own metric in the default registry.
    transcodes = Counter(f"{collector_name}_transcodes", "test counter", registry=metrics.REGISTRY)
    transcodes.inc(2)
    scrapes = 0

    async def collect() -> None:
        nonlocal scrapes
        scrapes += 1
        metrics.set_queue_depth(collector_name, 40 + scrapes)

    metrics.register_collector(collector_name, collect)
    server = metrics.start_metrics_server(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        # The scrape runs in the server's thread; the loop must stay free to refresh.
        response = await asyncio.to_thread(httpx.get, url, timeout=10)
    finally:
        server.close()
        metrics.REGISTRY.unregister(transcodes)

    assert response.status_code == 200
    assert _value(response.text, f"{collector_name}_transcodes_total") == 2.0
    assert _value(response.text, f'videoforge_queue_depth{{queue="{collector_name}"}}') == 41.0
    assert scrapes == 1
    with pytest.raises(httpx.ConnectError):
        await asyncio.to_thread(httpx.get, url, timeout=2)

"""Sync fixtures: an own Mosquitto per test, a node database, a fake central, publishers that get stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_node.config import SyncConfig
from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from edge_node.sync.outbox import OutboxPublisher
from tests.edge_node.sync.brokers import FakeCentral, Mosquitto

NODE = "node-t"
SHOP = "shop-t"

PublisherFactory = Callable[..., Awaitable[OutboxPublisher]]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto of this test only (persistence in tmp_path/broker)."""
    server = Mosquitto(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh node database."""
    database = Database(tmp_path / "edge.sqlite3")
    yield database
    database.close()


@pytest.fixture
def central(broker: Mosquitto) -> Iterator[FakeCentral]:
    """A fake central that acks every contiguous seq it receives."""
    fake = FakeCentral(broker.port).start()
    yield fake
    fake.stop()


def settings(url: str, **overrides: Any) -> SyncConfig:
    """Sync settings tuned for tests: short ack timeout and reconnect delays, no periodic metrics."""
    values: dict[str, Any] = {
        "enabled": True, "broker_url": url, "ack_timeout_seconds": 1.0, "reconnect_min_seconds": 0.1,
        "reconnect_max_seconds": 0.5, "metrics_interval_seconds": 3600, "keepalive_seconds": 5,
        "session_expiry_seconds": 300,
    }
    return SyncConfig.model_validate(values | overrides)


def add_results(db: Database, count: int) -> list[int]:
    """Queue `count` result rows like the worker does; returns their seqs."""
    def write(conn: Any) -> list[int]:
        return [outbox_store.append(conn, "results", {"job_id": f"job-{n}", "status": "completed", "text": "x"})
                for n in range(count)]
    return db.run_sync(write)


@pytest.fixture
async def make_publisher(db: Database) -> AsyncIterator[PublisherFactory]:
    """Build and start publishers for NODE/SHOP on `db`; all are stopped at the end of the test."""
    started: list[OutboxPublisher] = []

    async def factory(url: str, **overrides: Any) -> OutboxPublisher:
        publisher = OutboxPublisher(settings(url, **overrides), NODE, SHOP, db)
        await publisher.start()
        started.append(publisher)
        return publisher

    yield factory
    for publisher in started:
        await publisher.stop()

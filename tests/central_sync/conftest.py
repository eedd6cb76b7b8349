"""Fixtures of the central service tests: real Mosquitto (our own, per test), PostgreSQL (one database per run,
emptied before each test), tansu (per test, when asked for) and the real tiny TrOCR bundle (once per session,
when asked for)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from central_sync.config import CentralConfig
from central_sync.db.migrate import upgrade
from tests.services import Mosquitto, PostgresServer, Tansu, free_port, plain_dsn

if TYPE_CHECKING:  # the node's engines load only when a test asks for the tiny bundle
    from edge_node.engines.registry import EngineSet

#: Every table the tests write; emptied before each test (alembic_version stays).
TABLES = (
    "ocr_processing_jobs, ocr_error_logs, ocr_model_metrics, node_pending_seqs, nodes, kafka_outbox, rejects, "
    "products, rollouts, model_bundles, model_state"
)


@pytest.fixture(scope="session")
def pg() -> PostgresServer:
    """The machine's PostgreSQL (fails under CI=true, skips elsewhere, when missing)."""
    return PostgresServer()


@pytest.fixture(scope="session")
def migrated_db(pg: PostgresServer) -> Iterator[str]:
    """This run's database, migrated to head once; dropped at the end."""
    import asyncio

    url = pg.create_database()
    try:
        asyncio.run(upgrade(url))
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture
async def db_url(migrated_db: str) -> str:
    """The migrated database, emptied."""
    conn = await asyncpg.connect(plain_dsn(migrated_db))
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return migrated_db


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, engines: EngineSet) -> Any:
    """The real tiny TrOCR bundle of tests/tiny_trocr.py (built once per process: 30-60 s)."""
    from tiny_trocr import build

    return build(tmp_path_factory.mktemp("tiny-trocr"), engines.detector)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Our own Mosquitto for this test."""
    instance = Mosquitto(tmp_path / "mosquitto").start()
    yield instance
    instance.stop()


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    """A tansu broker for this test."""
    instance = Tansu(tmp_path / "tansu").start()
    yield instance
    instance.stop()


@pytest.fixture
def make_config(db_url: str, broker: Mosquitto, tmp_path: Path) -> Callable[..., CentralConfig]:
    """Build a replica config against this test's services; Kafka defaults to a port where nothing listens; the
    model registry stores under the test's tmp_path."""
    dead_kafka = f"127.0.0.1:{free_port()}"

    def make(client_id: str = "central-a", kafka: str | None = None, registry: dict[str, Any] | None = None,
             **ingest: Any) -> CentralConfig:
        return CentralConfig.model_validate(
            {
                "database": {"url": db_url, "migrate_on_start": False, "pool_size": 2},
                "mqtt": {"url": broker.url, "client_id": client_id, "session_expiry_seconds": 300},
                "ingest": {"batch_max_wait_ms": 5, "retry_initial_seconds": 0.1, **ingest},
                "kafka": {
                    "bootstrap": kafka or dead_kafka, "request_timeout_ms": 3000, "retry_initial_seconds": 0.2,
                    "retry_max_seconds": 1.0, "poll_interval_seconds": 0.2,
                },
                "http": {"host": "127.0.0.1", "port": 0},
                "registry": {"storage_dir": str(tmp_path / "registry"), **(registry or {})},
            }
        )

    return make

"""`central-sync migrate` creates the schema on an empty database from any working directory, is idempotent,
and the Alembic revisions agree with the SQLAlchemy models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from central_sync.db.migrate import alembic_config, current_revision, head_revision
from central_sync.db.models import metadata
from tests.central_sync.harness import query
from tests.services import PostgresServer

pytestmark = pytest.mark.integration

TABLES = {
    "alembic_version", "kafka_outbox", "node_pending_seqs", "nodes", "ocr_error_logs", "ocr_model_metrics",
    "ocr_processing_jobs", "products", "rejects", "model_bundles", "rollouts", "model_state",
}


@pytest.fixture
def empty_db(pg: PostgresServer) -> Iterator[str]:
    """A database of its own, empty."""
    url = pg.create_database("central_migrate")
    yield url
    pg.drop_database(url)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("central-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "central_sync"]


def _migrate(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CENTRAL_DATABASE_URL": url.replace("postgresql+asyncpg://", "postgresql://")}
    return subprocess.run([*_cli(), "migrate"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


async def test_migrate_creates_the_schema_and_is_idempotent(empty_db: str, tmp_path: Path) -> None:
    assert await current_revision(empty_db) is None
    first = _migrate(empty_db, tmp_path)
    assert first.returncode == 0, first.stderr
    assert await current_revision(empty_db) == head_revision()
    tables = {r[0] for r in await query(empty_db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == TABLES
    indexes = {
        r[0] for r in await query(empty_db, "SELECT indexname FROM pg_indexes WHERE tablename = 'ocr_processing_jobs'")
    }
    assert {"ix_ocr_processing_jobs_shop_id", "ix_ocr_processing_jobs_status", "ix_ocr_processing_jobs_created_at",
            "ix_ocr_processing_jobs_confidence_score", "ix_ocr_processing_jobs_structured_data",
            "uq_ocr_processing_jobs_node_id_job_id"} <= indexes
    gin = await query(
        empty_db, "SELECT indexdef FROM pg_indexes WHERE indexname = $1", "ix_ocr_processing_jobs_structured_data"
    )
    assert "USING gin" in gin[0][0]
    triggers = await query(empty_db, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    assert [r["tgname"] for r in triggers] == ["trg_ocr_jobs_product"]

    second = _migrate(empty_db, tmp_path)
    assert second.returncode == 0, second.stderr
    assert await current_revision(empty_db) == head_revision()


async def test_the_models_match_the_migrated_schema(migrated_db: str) -> None:
    engine = create_async_engine(migrated_db)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True, "compare_server_default": True}),
                    metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_migrate_reports_an_unreachable_database(tmp_path: Path) -> None:
    result = _migrate("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    assert result.returncode == 1
    assert "migration to head failed" in result.stderr


async def test_the_model_registry_revision_downgrades_and_upgrades_again(empty_db: str, tmp_path: Path) -> None:
    assert _migrate(empty_db, tmp_path).returncode == 0
    engine = create_async_engine(empty_db)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0001"))
    finally:
        await engine.dispose()
    tables = {r[0] for r in await query(empty_db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == TABLES - {"model_bundles", "rollouts", "model_state"}
    assert _migrate(empty_db, tmp_path).returncode == 0
    assert await current_revision(empty_db) == head_revision()

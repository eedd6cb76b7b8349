"""Programmatic Alembic: `upgrade()` brings a database to the head revision from any working directory."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from central_sync.errors import MigrationError

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config without alembic.ini: the script folder inside the package, and the live connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection, revision: str) -> str | None:
    command.upgrade(alembic_config(connection), revision)
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply pending revisions up to `revision`; returns the revision now in force. Idempotent."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            current = await conn.run_sync(_upgrade, revision)
    except (SQLAlchemyError, OSError) as err:
        raise MigrationError(f"migration to {revision} failed: {err}") from err
    finally:
        await engine.dispose()
    _LOGGER.info("database schema at revision %s", current)
    return current


async def current_revision(url: str) -> str | None:
    """The revision a database is at (None when it was never migrated)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    except (SQLAlchemyError, OSError) as err:
        raise MigrationError(f"cannot read the schema revision: {err}") from err
    finally:
        await engine.dispose()

"""Alembic environment. `central_sync.db.migrate` hands over a live connection in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from central_sync.db.models import metadata

#: pg_advisory_xact_lock key ("ZKPOS"): replicas that migrate at the same time run one after the other.
MIGRATION_LOCK_KEY = 0x5A4B504F53


def _run_online(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    live = context.config.attributes.get("connection")
    if live is None:
        raise RuntimeError("run migrations through `central-sync migrate`, which supplies the connection")
    _run_online(live)

"""Engine helpers: build the async engine, classify database failures, check liveness."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from central_sync.config import DatabaseConfig
from central_sync.errors import DatabaseError

_LOGGER = logging.getLogger(__name__)

#: SQLSTATE classes where the DATA is at fault (22 data exception, 23 integrity, 54 program limit such as an
#: index row too large): retrying the same rows cannot help. Everything else (connection loss, deadlock,
#: shutdown, even a missing table while a migration is pending) is retried, so no message is dropped for it.
DATA_FAULT_CLASSES = frozenset({"22", "23", "54"})
#: A health probe that takes longer than this reports the database as down.
PING_TIMEOUT_SECONDS = 2.0


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def create_engine(config: DatabaseConfig) -> AsyncEngine:
    """The async engine of one replica (asyncpg, a small pool, pre-ping so a restarted server is survived)."""
    return create_async_engine(
        config.url,
        pool_size=config.pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        json_serializer=_dumps,
        connect_args={"timeout": config.connect_timeout_seconds},
    )


def sqlstate(err: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error, when there is one."""
    orig = getattr(err, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def translate(err: BaseException, doing: str) -> DatabaseError:
    """A library error as our DatabaseError; `retriable` is False only when the data itself is at fault."""
    state = sqlstate(err)
    data_fault = state is not None and state[:2] in DATA_FAULT_CLASSES
    if isinstance(err, DBAPIError) and err.connection_invalidated:
        data_fault = False
    detail = str(getattr(err, "orig", None) or err).strip().splitlines()[0] if str(err) else type(err).__name__
    return DatabaseError(f"{doing}: {detail}", retriable=not data_fault)


async def ping(engine: AsyncEngine) -> bool:
    """True when a `SELECT 1` answers in time."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except (SQLAlchemyError, OSError, TimeoutError) as err:
        _LOGGER.debug("database ping failed: %s", err)
        return False

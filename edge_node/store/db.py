"""One SQLite connection in WAL mode, used from one dedicated thread so the event loop never blocks on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from edge_node.errors import ServiceUnavailableError
from edge_node.store.schema import migrate

T = TypeVar("T")

#: How long a writer waits for the lock before SQLite gives up (another process, e.g. a backup).
BUSY_TIMEOUT_MS = 5000


def utc_now() -> str:
    """Timestamps are stored as ISO 8601 UTC text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the node database and bring its schema up to date."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a power cut loses at most the last transactions, never corrupts the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    except (sqlite3.Error, OSError) as err:
        raise ServiceUnavailableError(f"cannot open the node database at {path}: {err}") from err
    return conn


class Database:
    """Runs store functions on the database thread; every call gets the connection as first argument."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self.conn = self._executor.submit(connect, path).result()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Call `fn(conn, *args)` on the database thread; SQLite errors become SERVICE_UNAVAILABLE."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _guarded, fn, self.conn, args)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """The same from a non-async caller (CLI, tests)."""
        return self._executor.submit(_guarded, fn, self.conn, args).result()

    def close(self) -> None:
        """Finish pending calls and close the connection."""
        self._executor.submit(self.conn.close).result()
        self._executor.shutdown(wait=True)


def _guarded(fn: Callable[..., T], conn: sqlite3.Connection, args: tuple[object, ...]) -> T:
    try:
        return fn(conn, *args)
    except sqlite3.Error as err:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ServiceUnavailableError(f"node storage failed: {err}") from err


class transaction:  # noqa: N801 - used like a function: `with transaction(conn):`
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error.

    Inside an open transaction it joins it: the outermost one commits (so store functions compose into one
    commit, e.g. the image index row and the job row of a new job)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._outermost = False

    def __enter__(self) -> sqlite3.Connection:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self._outermost = True
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._outermost:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

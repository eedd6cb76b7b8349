"""Can the node write its storage right now? The probe behind the `storage` block of /health.

Every OCR request writes before it answers (the job row, the encrypted upload), so a read-only or full data
directory turns every upload into 503 SERVICE_UNAVAILABLE while reads of existing jobs still work. The probe
makes that visible to probes and operators:

- each folder the node writes (the data dir, its `images/` folder, the database's folder when elsewhere) gets a
  small temp file created, written, fsynced and removed: this fails on a read-only mount, an immutable folder
  (`chattr +i`) and a full disk (the write or the fsync gets ENOSPC);
- the SQLite database gets a real write transaction on its own thread (`PRAGMA application_id` rewritten with its
  own value: one page to the WAL, no schema or data change), which fails when the database file or its WAL
  cannot be written.

The file probes run in the default executor and the database one on the database thread, never on the event
loop. A result is reused for PROBE_TTL_SECONDS, and concurrent health requests share one probe, so frequent
probes cost one fsync every few seconds at most. `free_bytes` is what an unprivileged writer could still use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_node.errors import ServiceUnavailableError
from edge_node.store.db import Database, transaction

_LOGGER = logging.getLogger(__name__)

#: How long one probe's answer is reused: probes (k8s every 10-20 s, compose every 30 s) stay cheap, and a fault
#: shows within seconds.
PROBE_TTL_SECONDS = 5.0
#: What the probe writes: a few bytes are enough to need a block (tmpfs: a page) on a full disk.
PROBE_BYTES = b"zakpos storage probe\n"
#: The suffix makes a probe file left by a kill look like any stale temp file, which the image purge removes.
PROBE_SUFFIX = ".tmp"


@dataclass(frozen=True, slots=True)
class StorageState:
    """The answer of one probe."""

    writable: bool
    free_bytes: int | None
    error: str | None

    def as_dict(self) -> dict[str, object]:
        """The `storage` block of /health."""
        return {"writable": self.writable, "free_bytes": self.free_bytes, "error": self.error}


def probe_folder(folder: Path) -> None:
    """Create, write, fsync and remove a small file in `folder`; OSError when any step fails."""
    fd, name = tempfile.mkstemp(prefix=".storage-probe-", suffix=PROBE_SUFFIX, dir=folder)
    try:
        os.write(fd, PROBE_BYTES)
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):  # the create worked, so the folder takes writes; leftovers are purged
            os.unlink(name)


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the folder's filesystem; None when it cannot be asked."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def probe_database(conn: sqlite3.Connection) -> None:
    """One real write transaction that changes nothing (runs on the database thread)."""
    with transaction(conn):
        (application_id,) = conn.execute("PRAGMA application_id").fetchone()
        conn.execute(f"PRAGMA application_id = {int(application_id)}")


def probe_folders(folders: Sequence[Path]) -> StorageState:
    """The file part of the probe, synchronous (run it in an executor)."""
    error = None
    for folder in folders:
        try:
            probe_folder(folder)
        except OSError as err:
            error = f"cannot write to {folder}: {err.strerror or err}"
            break
    return StorageState(writable=error is None, free_bytes=free_bytes(folders[0]), error=error)


class StorageProbe:
    """Probes the node's storage at most once per `ttl_seconds`; `clock` is monotonic seconds."""

    def __init__(self, data_dir: Path, database_path: Path, ttl_seconds: float = PROBE_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._data_dir = data_dir
        self._database_folder = database_path.parent
        self._ttl = ttl_seconds
        self.clock = clock
        self._lock = asyncio.Lock()
        self._last: tuple[float, StorageState] | None = None

    def folders(self) -> list[Path]:
        """The folders the node writes: the data dir first (its free space is reported), then the others."""
        folders = [self._data_dir]
        images = self._data_dir / "images"
        for extra in (images if images.is_dir() else None, self._database_folder):
            if extra is not None and extra.resolve() not in {folder.resolve() for folder in folders}:
                folders.append(extra)
        return folders

    def _probe_files(self) -> StorageState:
        return probe_folders(self.folders())

    async def check(self, db: Database) -> StorageState:
        """The storage state, probed now or at most `ttl_seconds` ago."""
        async with self._lock:
            if self._last is not None and self.clock() - self._last[0] < self._ttl:
                return self._last[1]
            state = await asyncio.get_running_loop().run_in_executor(None, self._probe_files)
            if state.writable:
                try:
                    await db.run(probe_database)
                except ServiceUnavailableError as err:
                    state = StorageState(writable=False, free_bytes=state.free_bytes,
                                         error=f"cannot write the database {db.path}: {err.message}")
            if self._last is None or self._last[1].writable != state.writable:
                log = _LOGGER.info if state.writable else _LOGGER.warning
                log("node storage %s%s", "writable" if state.writable else "NOT writable",
                    f": {state.error}" if state.error else "")
            self._last = (self.clock(), state)
            return state

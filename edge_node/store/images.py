"""Uploaded images at rest: AES-256-GCM encrypted files, keyed by job id, removed after retention.

The keys come from key files beside the data (or the config), never from the database; a key's id (a hash
prefix) is stored with each blob. Rotation: retired keys stay readable (`storage.image_old_key_files`) and a blob
written with one is re-encrypted with the current key the next time it is read. Every read is written to the
audit log (`store.audit`) in the same call. Every method taking `conn` runs on the database thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_node.errors import ServiceUnavailableError
from edge_node.store import audit
from edge_node.store.audit import ImageAccess

_LOGGER = logging.getLogger(__name__)

NONCE_BYTES = 12
KEY_BYTES = 32
BLOB_SUFFIX = ".bin"
#: A half-written blob (a crash between write and rename) older than this is an orphan the purge removes.
STALE_TMP_SECONDS = 3600


def key_id_of(key: bytes) -> str:
    """The id stored with each blob: a hash prefix that names the key without revealing it."""
    return hashlib.sha256(key).hexdigest()[:16]


def load_key(path: Path) -> bytes:
    """Read an existing 32-byte key file (a retired key must exist: losing it loses its images)."""
    try:
        key = path.read_bytes()
    except OSError as err:
        raise ServiceUnavailableError(f"cannot read the image key file {path}: {err}") from err
    if len(key) != KEY_BYTES:
        raise ServiceUnavailableError(f"image key file {path} must hold exactly {KEY_BYTES} bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read the 32-byte key file, creating it (mode 0600) on first start."""
    if path.exists():
        return load_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class ImageVault:
    """Encrypted image files under one folder; the index lives in the `images` table.

    With `store=False` (`storage.store_images: false`) nothing new is written, but images stored earlier can
    still be read and are still purged.
    """

    def __init__(
        self, folder: Path, key: bytes, retention_days: float, old_keys: Sequence[bytes] = (), store: bool = True
    ) -> None:
        self._folder = folder
        self.key_id = key_id_of(key)
        self._aead = AESGCM(key)
        self._keys: dict[str, AESGCM] = {key_id_of(old): AESGCM(old) for old in old_keys}
        self._keys[self.key_id] = self._aead
        self._retention_seconds = retention_days * 86400
        self.store = store
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self._folder / f"{job_id}{BLOB_SUFFIX}"

    def _write(self, job_id: str, data: bytes) -> Path:
        """Encrypt with the current key and replace the file atomically (fsync'd); the job id is the AAD."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        blob = nonce + self._aead.encrypt(nonce, data, job_id.encode())
        path = self._path(job_id)
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise ServiceUnavailableError(f"cannot store the image: {err}") from err
        return path

    def put(self, conn: sqlite3.Connection, job_id: str, data: bytes) -> bool:
        """Store the image before the job row can point at it; False (nothing written) when storing is off.

        Call it in the same database-thread call that inserts the job: the purge removes index rows without a job.
        """
        if not self.store:
            return False
        path = self._write(job_id, data)
        conn.execute(
            "INSERT OR REPLACE INTO images (job_id, path, key_id, expires_at) VALUES (?, ?, ?, ?)",
            (job_id, path.name, self.key_id, time.time() + self._retention_seconds),
        )
        return True

    def read(self, conn: sqlite3.Connection, job_id: str, access: ImageAccess) -> bytes | None:
        """Decrypt a stored image and audit the read; None when it is gone (purged, deleted, never stored).

        A blob of a retired key is re-encrypted with the current key on the way (lazy rotation).
        """
        row = conn.execute("SELECT path, key_id FROM images WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        try:
            blob = (self._folder / row["path"]).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ServiceUnavailableError(f"cannot read the stored image: {err}") from err
        data, key_id = self._decrypt(job_id, blob, row["key_id"])
        audit.record(conn, job_id, access, audit.READ)
        if key_id != self.key_id:
            self._rotate(conn, job_id, data, key_id)
        return data

    def _rotate(self, conn: sqlite3.Connection, job_id: str, data: bytes, old_key_id: str) -> None:
        """Best effort: a failed rewrite leaves the old blob, still readable, for the next read to try again."""
        try:
            self._write(job_id, data)
            conn.execute("UPDATE images SET key_id = ? WHERE job_id = ?", (self.key_id, job_id))
        except (ServiceUnavailableError, sqlite3.Error) as err:
            _LOGGER.warning("image of job %s not re-encrypted yet: %s", job_id, err)
            return
        _LOGGER.info("image of job %s re-encrypted from key %s to key %s", job_id, old_key_id, self.key_id)

    def _decrypt(self, job_id: str, blob: bytes, stored_key_id: str) -> tuple[bytes, str]:
        """Try the key the index names first, then the others (a crash may land between rewrite and update)."""
        order = [stored_key_id, *(k for k in self._keys if k != stored_key_id)]
        for key_id in order:
            aead = self._keys.get(key_id)
            if aead is None:
                continue
            try:
                return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], job_id.encode()), key_id
            except InvalidTag:
                continue
        if stored_key_id not in self._keys:
            raise ServiceUnavailableError(
                f"the image of job {job_id} was encrypted with key {stored_key_id}, which is not configured"
                " (storage.image_old_key_files)"
            )
        raise ServiceUnavailableError("stored image failed its integrity check")

    def delete(self, conn: sqlite3.Connection, job_id: str) -> bool:
        """Remove one stored image and its index row; True when a file was removed.

        A file that cannot be unlinked now (a failing disk) has no index row any more, so the next purge's orphan
        sweep removes it; until then it stays ciphertext.
        """
        conn.execute("DELETE FROM images WHERE job_id = ?", (job_id,))
        path = self._path(job_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            _LOGGER.warning("stored image of job %s left for the next purge: %s", job_id, err)
            return False
        return True

    def purge_expired(self, conn: sqlite3.Connection, now: float | None = None) -> int:
        """Delete images past retention, then orphans (files without an index row, rows without a job).

        Returns how many expired images went. Runs on the database thread, so no `put` is half done meanwhile.
        """
        cutoff = time.time() if now is None else now
        rows = conn.execute("SELECT job_id, path FROM images WHERE expires_at <= ?", (cutoff,)).fetchall()
        try:
            for row in rows:
                (self._folder / row["path"]).unlink(missing_ok=True)
        except OSError as err:  # the rows stay, so the next purge tries again
            raise ServiceUnavailableError(f"cannot delete expired images: {err}") from err
        conn.executemany("DELETE FROM images WHERE job_id = ?", [(row["job_id"],) for row in rows])
        self._purge_orphans(conn, cutoff)
        return len(rows)

    def _purge_orphans(self, conn: sqlite3.Connection, now: float) -> None:
        orphans = conn.execute(
            "SELECT job_id FROM images WHERE job_id NOT IN (SELECT id FROM ocr_processing_jobs)"
        ).fetchall()
        for row in orphans:
            self.delete(conn, row["job_id"])
        indexed = {row["path"] for row in conn.execute("SELECT path FROM images")}
        for path in self._folder.iterdir():
            stale_tmp = path.suffix == ".tmp" and path.stat().st_mtime < now - STALE_TMP_SECONDS
            if stale_tmp or (path.suffix == BLOB_SUFFIX and path.name not in indexed):
                path.unlink(missing_ok=True)
        if orphans:
            _LOGGER.info("removed %d stored images whose job no longer exists", len(orphans))

"""Uploaded images at rest: AES-256-GCM encrypted files, keyed by job id, removed after retention.

The key comes from the config or a key file beside the data, never from the database; its id (a hash
prefix) is stored with each blob so that a rotated key can still be told apart.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_node.errors import ServiceUnavailableError

NONCE_BYTES = 12
KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """Read the 32-byte key file, creating it (mode 0600) on first start."""
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ServiceUnavailableError(f"image key file {path} must hold exactly {KEY_BYTES} bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class ImageVault:
    """Encrypted image files under one folder; the index lives in the `images` table."""

    def __init__(self, folder: Path, key: bytes, retention_days: float) -> None:
        self._folder = folder
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self._retention_seconds = retention_days * 86400
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self._folder / f"{job_id}.bin"

    def put(self, conn: sqlite3.Connection, job_id: str, data: bytes) -> None:
        """Encrypt and write (fsync'd) before the job row can point at it; the job id is the AAD."""
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
            raise ServiceUnavailableError(f"cannot store the image: {err}") from err
        conn.execute(
            "INSERT OR REPLACE INTO images (job_id, path, key_id, expires_at) VALUES (?, ?, ?, ?)",
            (job_id, path.name, self.key_id, time.time() + self._retention_seconds),
        )

    def get(self, job_id: str) -> bytes | None:
        """Decrypt a stored image; None when it is gone (purged or never stored)."""
        try:
            blob = self._path(job_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ServiceUnavailableError(f"cannot read the stored image: {err}") from err
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], job_id.encode())
        except InvalidTag as err:
            raise ServiceUnavailableError("stored image failed its integrity check") from err

    def delete(self, conn: sqlite3.Connection, job_id: str) -> None:
        """Remove one stored image and its index row."""
        self._path(job_id).unlink(missing_ok=True)
        conn.execute("DELETE FROM images WHERE job_id = ?", (job_id,))

    def purge_expired(self, conn: sqlite3.Connection, now: float | None = None) -> int:
        """Delete images past retention; returns how many."""
        cutoff = time.time() if now is None else now
        rows = conn.execute("SELECT job_id, path FROM images WHERE expires_at <= ?", (cutoff,)).fetchall()
        for row in rows:
            (self._folder / row["path"]).unlink(missing_ok=True)
        conn.executemany("DELETE FROM images WHERE job_id = ?", [(row["job_id"],) for row in rows])
        return len(rows)

"""Result cache: the same image with the same options answers from here in a few ms.

Keys are SHA-256 of the image bytes plus the canonical options. A negative entry remembers an image
that is not decodable (INVALID_IMAGE) so that a tablet retrying the same broken upload costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

NEGATIVE = "__invalid_image__"


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached result, or the message of a cached INVALID_IMAGE."""

    result: dict[str, Any] | None
    error_message: str | None


def cache_key(image_hash: str, options: dict[str, Any]) -> str:
    """Key of one (image, options) pair."""
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{image_hash}|{canonical}".encode()).hexdigest()


def lookup(conn: sqlite3.Connection, key: str) -> CacheHit | None:
    """A live entry, or None."""
    row = conn.execute("SELECT result, expires_at FROM result_cache WHERE key = ?", (key,)).fetchone()
    if row is None or row["expires_at"] <= time.time():
        return None
    stored = json.loads(row["result"])
    if isinstance(stored, dict) and NEGATIVE in stored:
        return CacheHit(None, str(stored[NEGATIVE]))
    return CacheHit(stored, None)


def store(conn: sqlite3.Connection, key: str, result: dict[str, Any], ttl_seconds: float) -> None:
    """Remember a result (caller decides the transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO result_cache (key, result, expires_at) VALUES (?, ?, ?)",
        (key, json.dumps(result), time.time() + ttl_seconds),
    )


def store_negative(conn: sqlite3.Connection, key: str, message: str, ttl_seconds: float) -> None:
    """Remember that this upload is not a readable image."""
    store(conn, key, {NEGATIVE: message}, ttl_seconds)


def purge_expired(conn: sqlite3.Connection) -> int:
    """Drop expired entries; returns how many."""
    return conn.execute("DELETE FROM result_cache WHERE expires_at <= ?", (time.time(),)).rowcount

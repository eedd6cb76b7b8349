"""Images at rest: ciphertext on disk, bound to the job id, purged after retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_node.errors import ServiceUnavailableError
from edge_node.store import jobs as job_store
from edge_node.store.audit import ImageAccess
from edge_node.store.db import connect
from edge_node.store.images import ImageVault, load_or_create_key
from edge_node.store.jobs import NewJob

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
ACCESS = ImageAccess(user_id="admin-1", role="admin", shop_id="shop-a", reason="test")


def _job(conn: sqlite3.Connection, job_id: str) -> None:
    job_store.insert_job(conn, NewJob("shop-a", "clerk-1", "product", {}, "h", 1), job_id)


def test_roundtrip_is_encrypted_and_authenticated(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    key = load_or_create_key(tmp_path / "keys" / "images.key")
    assert load_or_create_key(tmp_path / "keys" / "images.key") == key
    vault = ImageVault(tmp_path / "images", key, retention_days=90)
    vault.put(conn, "job-1", PNG)
    stored = (tmp_path / "images" / "job-1.bin").read_bytes()
    assert b"PNG" not in stored and b"pixels" not in stored
    assert vault.read(conn, "job-1", ACCESS) == PNG
    vault.put(conn, "job-2", PNG)
    (tmp_path / "images" / "job-2.bin").write_bytes(stored)  # same blob under another job id: AAD mismatch
    with pytest.raises(ServiceUnavailableError):
        vault.read(conn, "job-2", ACCESS)


def test_purge_deletes_exactly_the_expired(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    vault = ImageVault(tmp_path / "images", b"k" * 32, retention_days=1)
    for job_id in ("old", "new"):
        _job(conn, job_id)
        vault.put(conn, job_id, PNG)
    conn.execute("UPDATE images SET expires_at = 0 WHERE job_id = 'old'")
    assert vault.purge_expired(conn) == 1
    assert vault.read(conn, "old", ACCESS) is None and vault.read(conn, "new", ACCESS) == PNG
    assert [r["job_id"] for r in conn.execute("SELECT job_id FROM images")] == ["new"]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["new.bin"]

"""Images at rest: ciphertext on disk, bound to the job id, purged after retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.errors import ServiceUnavailableError
from edge_node.store.db import connect
from edge_node.store.images import ImageVault, load_or_create_key

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


def test_roundtrip_is_encrypted_and_authenticated(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    key = load_or_create_key(tmp_path / "keys" / "images.key")
    assert load_or_create_key(tmp_path / "keys" / "images.key") == key
    vault = ImageVault(tmp_path / "images", key, retention_days=90)
    vault.put(conn, "job-1", PNG)
    stored = (tmp_path / "images" / "job-1.bin").read_bytes()
    assert b"PNG" not in stored and b"pixels" not in stored
    assert vault.get("job-1") == PNG
    (tmp_path / "images" / "job-2.bin").write_bytes(stored)  # same blob under another job id: AAD mismatch
    with pytest.raises(ServiceUnavailableError):
        vault.get("job-2")


def test_purge_deletes_exactly_the_expired(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    vault = ImageVault(tmp_path / "images", b"k" * 32, retention_days=1)
    vault.put(conn, "old", PNG)
    vault.put(conn, "new", PNG)
    conn.execute("UPDATE images SET expires_at = 0 WHERE job_id = 'old'")
    assert vault.purge_expired(conn) == 1
    assert vault.get("old") is None and vault.get("new") == PNG
    assert [r["job_id"] for r in conn.execute("SELECT job_id FROM images")] == ["new"]

"""The storage probe behind /health's `storage` block: what it writes and leaves, when it reports unwritable,
that it is cached, and /health's answer (503 `unhealthy` with the reason, then healthy again). Real read-only and
full disks are in tests/integration/test_edge_faults.py."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edge_node.api.health import STORAGE_PROBE
from edge_node.store import probe
from edge_node.store.db import Database
from edge_node.store.probe import StorageProbe, StorageState, probe_folders


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_probe_writes_nothing_that_stays(tmp_path: Path) -> None:
    state = probe_folders([tmp_path])
    assert state == StorageState(writable=True, free_bytes=state.free_bytes, error=None)
    assert state.free_bytes is not None and state.free_bytes > 0
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_not_writable(tmp_path: Path) -> None:
    state = probe_folders([tmp_path / "gone"])
    assert not state.writable and state.free_bytes is None
    assert state.error is not None and str(tmp_path / "gone") in state.error


def test_folders_are_the_data_dir_its_images_and_the_database_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    assert StorageProbe(data, data / "edge.sqlite3").folders() == [data, data / "images"]
    elsewhere = tmp_path / "db" / "node.sqlite3"
    assert StorageProbe(data, elsewhere).folders() == [data, data / "images", elsewhere.parent]


async def test_results_are_cached_for_the_ttl_and_failures_of_the_database_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(tmp_path / "edge.sqlite3")
    clock = FakeClock()
    storage = StorageProbe(tmp_path, db.path, ttl_seconds=5, clock=clock)
    calls: list[int] = []
    real_probe = probe.probe_database

    def counting(conn: sqlite3.Connection) -> None:
        calls.append(1)
        real_probe(conn)

    monkeypatch.setattr(probe, "probe_database", counting)
    try:
        assert (await storage.check(db)).writable
        clock.now += 4.9
        assert (await storage.check(db)).writable and len(calls) == 1  # cached
        clock.now += 0.2

        def broken(conn: sqlite3.Connection) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(probe, "probe_database", broken)
        state = await storage.check(db)
        assert not state.writable and state.error is not None
        assert "database" in state.error and "disk I/O error" in state.error
    finally:
        db.close()


async def test_health_is_unhealthy_while_the_disk_takes_no_writes(
        make_storage_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client: TestClient[Any, Any] = await make_storage_client()
    clock = FakeClock()
    client.app[STORAGE_PROBE].clock = clock
    healthy = await client.get("/api/v1/health")
    body = await healthy.json()
    assert healthy.status == 200 and body["data"]["status"] == "healthy"
    assert body["data"]["storage"]["writable"] is True and body["data"]["storage"]["error"] is None

    def full(folder: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(probe, "probe_folder", full)
    clock.now += 10
    sick = await client.get("/api/v1/health")
    body = await sick.json()
    assert sick.status == 503 and body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE" and "No space left on device" in body["error"]["message"]
    assert body["data"]["status"] == "unhealthy"
    assert body["data"]["storage"]["writable"] is False and "No space left" in body["data"]["storage"]["error"]
    assert "queue_status" in body["data"]  # the rest of the report is still there for the operator
    monkeypatch.undo()
    clock.now += 10
    again = await client.get("/api/v1/health")
    assert again.status == 200 and (await again.json())["data"]["storage"]["writable"] is True


@pytest.fixture
def make_storage_client(aiohttp_client: Any, edge_config: Any, engines: Any) -> Any:
    from edge_node.app import create_app

    async def factory() -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(edge_config, engines))

    return factory

"""Outbox rows the node can never send (unknown kind, a body that is no JSON object, over central's size limit)
go to a real central as small stand-ins under their own seq: central records them as skipped rejects, acks past
them, and the rows after them are committed and acked, so the node's outbox drains to empty (no seq gap that
would stall central's contiguous ack)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from edge_node.config import SyncConfig
from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from edge_node.sync.outbox import UNSENDABLE_KEY, OutboxPublisher
from shared_models.messages import MAX_MESSAGE_BYTES
from tests.integration.sync_cluster import CentralProcess, fresh_database, wait_until
from tests.services import Mosquitto, free_port, plain_dsn

pytestmark = pytest.mark.integration

NODE = "node-unsendable"
SHOP = "shop-unsendable"


def _job(job_id: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "shop_id": SHOP, "status": status, "attempts": 1, **extra}


def _fill(db: Database) -> None:
    def write(conn: Any) -> None:
        outbox_store.append(conn, "results", _job("u-1", result={"text": "MILK 1L"}))
        outbox_store.append(conn, "no-such-kind", _job("u-2"))
        conn.execute("INSERT INTO outbox (kind, payload, created_at) VALUES ('results', '[1, 2]', 'now')")
        outbox_store.append(conn, "results", _job("u-4", result={"text": "x" * (MAX_MESSAGE_BYTES + 10)}))
        outbox_store.append(conn, "errors", _job("u-5", "failed", error={"code": "LOW_QUALITY", "message": "blank"}))

    db.run_sync(write)


async def _drain(db: Database, broker: Mosquitto) -> None:
    settings = SyncConfig.model_validate({
        "enabled": True, "broker_url": broker.url, "ack_timeout_seconds": 5, "reconnect_min_seconds": 0.2,
        "reconnect_max_seconds": 1, "metrics_interval_seconds": 3600, "session_expiry_seconds": 300,
    })
    publisher = OutboxPublisher(settings, NODE, SHOP, db)
    await publisher.start()
    try:
        async def drained() -> bool:
            return db.run_sync(outbox_store.backlog) == 0

        await wait_until(drained, 30, "the node's outbox empty: every seq acked by central")
    finally:
        await publisher.stop()


async def _central_rows(dsn: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record], int]:
    conn = await asyncpg.connect(dsn)
    try:
        jobs = await conn.fetch("SELECT job_id, seq, status FROM ocr_processing_jobs ORDER BY seq")
        rejects = await conn.fetch("SELECT seq, skipped, reason, payload_excerpt FROM rejects ORDER BY seq")
        acked = int(await conn.fetchval("SELECT acked_seq FROM nodes WHERE node_id = $1", NODE))
    finally:
        await conn.close()
    return jobs, rejects, acked


def test_unsendable_rows_are_acked_past_and_the_outbox_drains(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "unsendable_sync"))
        broker = Mosquitto(tmp_path / "mosquitto").start()
        stack.callback(broker.stop)
        central = CentralProcess(tmp_path / "central", db_url, broker.url, f"127.0.0.1:{free_port()}",
                                 "central-unsendable", CENTRAL_KAFKA__ENABLED="false")
        stack.callback(central.stop)
        central.start()
        central.wait_subscribed()
        db = Database(tmp_path / "edge.sqlite3")
        stack.callback(db.close)
        _fill(db)
        asyncio.run(_drain(db, broker))
        jobs, rejects, acked = asyncio.run(_central_rows(plain_dsn(db_url)))

    assert [(r["job_id"], r["seq"], r["status"]) for r in jobs] == [("u-1", 1, "completed"), ("u-5", 5, "failed")]
    assert [(r["seq"], r["skipped"]) for r in rejects] == [(2, True), (3, True), (4, True)]
    assert all(r["reason"].startswith("invalid errors body") for r in rejects)
    assert all(UNSENDABLE_KEY in r["payload_excerpt"] for r in rejects)
    assert '"job_id":"u-2"' in rejects[0]["payload_excerpt"] and '"job_id":"u-4"' in rejects[2]["payload_excerpt"]
    assert acked == 5

"""A shop's node loses its database (disk replaced, data dir wiped) and starts again under the same node id: its
new outbox counts from seq 1 again. Central must take those results as new, not drop them as duplicates of the
old database's seqs (it did before outbox epochs). Real `edge-node serve`, `central-sync serve`, Mosquitto and
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import asyncpg
import pytest

from bench.node_process import SHOP, EdgeProcess
from tests.integration.sync_cluster import CentralProcess, fresh_database, label_image, node_counts, submit, wait_until
from tests.services import Mosquitto, free_port, plain_dsn

pytestmark = pytest.mark.integration

NODE = "node-reset"
FIRST, SECOND = 30, 12


def _node(data_dir: Path, broker_url: str) -> EdgeProcess:
    return EdgeProcess(data_dir, 2, (), EDGE_NODE_ID=NODE, EDGE_SHOP_ID=SHOP, EDGE_SYNC__ENABLED="true",
                       EDGE_SYNC__BROKER_URL=broker_url, EDGE_SYNC__METRICS_INTERVAL_SECONDS="3600",
                       EDGE_CACHE__ENABLED="false")


async def _drain(node: EdgeProcess, images: list[bytes]) -> list[str]:
    job_ids = await submit(node, images)

    async def drained() -> bool:
        statuses, backlog = node_counts(node)
        return statuses.get("completed", 0) == len(images) and backlog == 0

    await wait_until(drained, 120, "every job completed and acked by central")
    return job_ids


async def _central_rows(dsn: str) -> tuple[set[str], int, str | None]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT job_id FROM ocr_processing_jobs WHERE node_id = $1", NODE)
        node = await conn.fetchrow("SELECT acked_seq, epoch FROM nodes WHERE node_id = $1", NODE)
    finally:
        await conn.close()
    return {row["job_id"] for row in rows}, int(node["acked_seq"]), node["epoch"]


def test_a_node_with_a_new_database_is_not_taken_for_a_resend(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "node_reset"))
        dsn = plain_dsn(db_url)
        broker = Mosquitto(tmp_path / "mosquitto").start()
        stack.callback(broker.stop)
        central = CentralProcess(tmp_path / "central", db_url, broker.url, f"127.0.0.1:{free_port()}",
                                 "central-reset", CENTRAL_KAFKA__ENABLED="false")
        stack.callback(central.stop)
        central.start()
        central.wait_subscribed()

        data_dir = tmp_path / "node"
        node = _node(data_dir, broker.url)
        stack.callback(node.kill)
        node.start()
        first_ids = asyncio.run(_drain(node, [label_image(n) for n in range(FIRST)]))
        jobs, acked, first_epoch = asyncio.run(_central_rows(dsn))
        assert jobs == set(first_ids) and acked >= FIRST and first_epoch is not None

        node.kill()
        shutil.rmtree(data_dir)  # the disk is replaced: a new database, its outbox counts from 1 again
        again = _node(data_dir, broker.url)
        stack.callback(again.kill)
        again.start()
        second_ids = asyncio.run(_drain(again, [label_image(FIRST + n) for n in range(SECOND)]))

        jobs, acked, second_epoch = asyncio.run(_central_rows(dsn))
    assert jobs == set(first_ids) | set(second_ids), "every result of both databases is at central"
    assert second_epoch is not None and second_epoch > first_epoch
    assert acked >= SECOND

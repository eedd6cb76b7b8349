"""Two `central-sync serve` replicas on the shared subscription, fed by a real `edge-node serve`: both receive
work, PostgreSQL holds each job of the node exactly once, the node is acked to its last seq and its outbox drains.
(tests/central_sync/test_central_replicas.py checks the same with fake nodes and more interleaving.)"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import pytest

from bench.node_process import SHOP, EdgeProcess
from tests.integration.sync_cluster import CentralProcess, fresh_database, label_image, node_counts, submit, wait_until
from tests.services import Mosquitto, free_port, plain_dsn

pytestmark = pytest.mark.integration

NODE = "node-replicas"
JOBS = 400


async def _run(node: EdgeProcess, dsn: str) -> tuple[list[str], list[asyncpg.Record], int]:
    job_ids = await submit(node, [label_image(n) for n in range(JOBS)])

    async def drained() -> bool:
        statuses, backlog = node_counts(node)
        return statuses.get("completed", 0) == JOBS and backlog == 0

    await wait_until(drained, 120, "every job completed and acked by central")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT job_id FROM ocr_processing_jobs WHERE node_id = $1", NODE)
        acked = int(await conn.fetchval("SELECT acked_seq FROM nodes WHERE node_id = $1", NODE))
    finally:
        await conn.close()
    return job_ids, rows, acked


def test_two_central_replicas_share_a_real_nodes_backlog_exactly_once(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "replicas_sync"))
        broker = Mosquitto(tmp_path / "mosquitto").start()
        stack.callback(broker.stop)
        replicas = []
        for name in ("central-a", "central-b"):
            central = CentralProcess(tmp_path / name, db_url, broker.url, f"127.0.0.1:{free_port()}", name,
                                     CENTRAL_KAFKA__ENABLED="false", CENTRAL_INGEST__BATCH_MAX_MESSAGES="20")
            stack.callback(central.stop)
            central.start()
            replicas.append(central)
        for central in replicas:
            central.wait_subscribed()
        node = EdgeProcess(tmp_path / "node", 2, (), EDGE_NODE_ID=NODE, EDGE_SHOP_ID=SHOP,
                           EDGE_SYNC__ENABLED="true", EDGE_SYNC__BROKER_URL=broker.url,
                           EDGE_SYNC__METRICS_INTERVAL_SECONDS="3600", EDGE_CACHE__ENABLED="false",
                           EDGE_WORKER__SOFT_QUEUE_LIMIT="10000", EDGE_WORKER__HARD_QUEUE_LIMIT="10000")
        stack.callback(node.kill)
        node.start()
        job_ids, rows, acked = asyncio.run(_run(node, plain_dsn(db_url)))
        stats = [central.health()["ingest"] for central in replicas]

    assert all(s["accepted"] > 0 for s in stats), f"both replicas must receive work: {stats}"
    assert sum(s["accepted"] for s in stats) == JOBS, stats
    assert len(rows) == JOBS and {r["job_id"] for r in rows} == set(job_ids)
    assert acked == JOBS

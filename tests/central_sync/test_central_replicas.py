"""Two central replicas on the shared subscription: both receive work (interleaved seqs of the same nodes), and
PostgreSQL holds every job exactly once with each node acked to its last seq."""

from __future__ import annotations

import asyncio

import pytest

from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, query, result_body, running_central, scalar

pytestmark = pytest.mark.integration

NODES = 3
#: Seqs per node; every 7th is sent twice to exercise duplicates across replicas.
PER_NODE = 150


async def _feed(node: FakeNode) -> None:
    for seq in range(1, PER_NODE + 1):
        body = result_body(f"{node.node_id}-job-{seq}", node.shop_id)
        await node.send(seq, UpKind.RESULTS, body)
        if seq % 7 == 0:
            await node.send(seq, UpKind.RESULTS, body)


async def test_two_replicas_share_the_load_exactly_once(make_config, broker, db_url) -> None:
    nodes = [FakeNode(broker.url, f"shop-{i % 2}", f"node-r{i}") for i in range(NODES)]
    try:
        async with (
            running_central(make_config("central-a", batch_max_messages=20), kafka=False) as (first, _),
            running_central(make_config("central-b", batch_max_messages=20), kafka=False) as (second, _),
        ):
            await asyncio.gather(*(_feed(node) for node in nodes))
            for node in nodes:
                await node.wait_acked(PER_NODE)

            assert first.stats.received > 0 and second.stats.received > 0, "both replicas must receive work"
            duplicates = NODES * (PER_NODE // 7)
            assert first.stats.received + second.stats.received == NODES * PER_NODE + duplicates
            assert first.stats.accepted + second.stats.accepted == NODES * PER_NODE
            assert first.stats.duplicates + second.stats.duplicates == duplicates

            per_node = await query(
                db_url, "SELECT node_id, count(*) AS n, count(DISTINCT job_id) AS d FROM ocr_processing_jobs"
                " GROUP BY node_id ORDER BY node_id",
            )
            assert [tuple(r) for r in per_node] == [(n.node_id, PER_NODE, PER_NODE) for n in nodes]
            assert await scalar(db_url, "SELECT count(*) FROM kafka_outbox") == NODES * PER_NODE
            acked = await query(db_url, "SELECT node_id, acked_seq FROM nodes ORDER BY node_id")
            assert [tuple(r) for r in acked] == [(n.node_id, PER_NODE) for n in nodes]
            assert await scalar(db_url, "SELECT count(*) FROM node_pending_seqs") == 0
    finally:
        for node in nodes:
            node.close()

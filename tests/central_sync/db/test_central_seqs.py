"""Contiguous-seq bookkeeping: the pure fold, and the database version under two concurrent writers (as two
replicas) receiving interleaved seqs of the same node, and across a restart (new engine)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

import pytest

from central_sync.config import DatabaseConfig
from central_sync.db.engine import create_engine
from central_sync.db.seqs import NodeSeqs, advance
from central_sync.db.writer import BatchOutcome, write_batch
from central_sync.inbound import RawMessage, classify
from shared_models.messages import SCHEMA_VERSION
from shared_models.topics import UpKind, up_topic
from tests.central_sync.harness import query, result_body, scalar


@pytest.mark.parametrize(
    ("acked", "seqs", "expected"),
    [
        (0, [], (0, set())),
        (0, [1, 2, 3], (3, set())),
        (0, [2, 3], (0, {2, 3})),
        (3, [1, 2, 5, 4, 7], (5, {7})),
        (5, [6, 6, 8, 9, 7], (9, set())),
    ],
)
def test_advance(acked: int, seqs: list[int], expected: tuple[int, set[int]]) -> None:
    assert advance(acked, seqs) == expected


def _message(node_id: str, seq: int, epoch: str | None = None, job: str | None = None) -> RawMessage:
    doc = {
        "schema_version": SCHEMA_VERSION, "node_id": node_id, "shop_id": "shop-s", "seq": seq, "kind": "results",
        "sent_at": datetime.now(UTC).isoformat(), "body": result_body(job or f"{node_id}-{seq}", "shop-s"),
    }
    if epoch is not None:
        doc["epoch"] = epoch
    return RawMessage(up_topic("shop-s", node_id, UpKind.RESULTS), json.dumps(doc).encode())


def _topic(kind: str) -> str:
    return f"ocr.{kind}"


@pytest.mark.integration
async def test_two_writers_with_interleaved_seqs_and_a_restart(db_url: str) -> None:
    rng = random.Random(7)
    total = 200
    seqs = list(range(1, total + 1))
    rng.shuffle(seqs)
    seqs += rng.sample(range(1, total + 1), 40)  # duplicates, also across writers
    halves = [seqs[0::2], seqs[1::2]]
    outcomes: list[BatchOutcome] = []

    async def writer(part: list[int]) -> None:
        engine = create_engine(DatabaseConfig(url=db_url, pool_size=1))
        try:
            for start in range(0, len(part), 5):
                items = [classify(_message("node-s", seq)) for seq in part[start : start + 5]]
                async with engine.begin() as conn:
                    outcomes.append(await write_batch(conn, items, _topic))
                await asyncio.sleep(0)
        finally:
            await engine.dispose()

    # First half of each writer's share, then a "restart" (fresh engines) for the rest.
    await asyncio.gather(writer(halves[0][: len(halves[0]) // 2]), writer(halves[1][: len(halves[1]) // 2]))
    await asyncio.gather(writer(halves[0][len(halves[0]) // 2 :]), writer(halves[1][len(halves[1]) // 2 :]))

    assert await scalar(db_url, "SELECT acked_seq FROM nodes WHERE node_id = 'node-s'") == total
    assert await scalar(db_url, "SELECT count(*) FROM node_pending_seqs") == 0
    assert await scalar(db_url, "SELECT count(DISTINCT job_id) FROM ocr_processing_jobs") == total
    assert await scalar(db_url, "SELECT count(*) FROM ocr_processing_jobs") == total
    assert await scalar(db_url, "SELECT count(*) FROM kafka_outbox") == total
    assert sum(o.accepted for o in outcomes) == total and sum(o.duplicates for o in outcomes) == 40
    acks = [o.acks["node-s"][1] for o in outcomes if "node-s" in o.acks]
    assert max(acks) == total


@pytest.mark.integration
async def test_acks_only_name_nodes_with_sequenced_messages(db_url: str) -> None:
    engine = create_engine(DatabaseConfig(url=db_url, pool_size=1))
    try:
        garbage = RawMessage(up_topic("shop-s", "node-u", UpKind.RESULTS), b"x")
        items = [classify(_message("node-t", 2)), classify(garbage)]
        async with engine.begin() as conn:
            outcome = await write_batch(conn, items, _topic)
    finally:
        await engine.dispose()
    assert outcome.acks == {"node-t": ("shop-s", 0, None)}
    assert [tuple(r) for r in await query(db_url, "SELECT node_id, seq FROM node_pending_seqs")] == [("node-t", 2)]
    assert await scalar(db_url, "SELECT count(*) FROM nodes WHERE node_id = 'node-u'") == 0


OLD, NEW = "20261101T080000-00000000000000aa", "20261130T090000-00000000000000bb"


def test_epochs_adopt_restart_and_ignore_stragglers() -> None:
    seqs = NodeSeqs("shop-s", acked=40, pending={42})
    assert seqs.follows(None) and seqs.acked == 40  # a node older than epochs: its one count goes on
    assert seqs.follows(OLD) and (seqs.epoch, seqs.acked, seqs.restarted) == (OLD, 40, False)  # adopted
    seqs.added.add(41)
    assert seqs.follows(NEW) and (seqs.acked, seqs.pending, seqs.added, seqs.restarted) == (0, set(), set(), True)
    assert not seqs.follows(OLD), "a message of the replaced database is not counted in the new one"
    assert seqs.follows(NEW) and seqs.epoch == NEW


@pytest.mark.integration
async def test_a_node_whose_database_was_replaced_is_counted_again_from_one(db_url: str) -> None:
    """Before epochs, a node that lost its database sent seqs 1.. again and central dropped them as duplicates."""
    engine = create_engine(DatabaseConfig(url=db_url, pool_size=1))
    outcomes: list[BatchOutcome] = []

    async def write(messages: list[RawMessage]) -> None:
        async with engine.begin() as conn:
            outcomes.append(await write_batch(conn, [classify(m) for m in messages], _topic))

    try:
        await write([_message("node-e", seq, OLD, job=f"old-{seq}") for seq in range(1, 6)])
        await write([_message("node-e", 7, OLD, job="old-7")])  # a gap: 7 pending
        # The node's disk is replaced: a new database counts from 1 again, under a later epoch.
        await write([_message("node-e", seq, NEW, job=f"new-{seq}") for seq in range(1, 4)])
        # A message of the old database still in flight arrives late, and a resend of the new one too.
        await write([_message("node-e", 6, OLD, job="old-6"), _message("node-e", 2, NEW, job="new-2")])
    finally:
        await engine.dispose()
    jobs = {row[0] for row in await query(db_url, "SELECT job_id FROM ocr_processing_jobs WHERE node_id = 'node-e'")}
    assert jobs == {f"old-{n}" for n in range(1, 8)} | {"new-1", "new-2", "new-3"}, "nothing of either is lost"
    assert await scalar(db_url, "SELECT acked_seq FROM nodes WHERE node_id = 'node-e'") == 3
    assert await scalar(db_url, "SELECT epoch FROM nodes WHERE node_id = 'node-e'") == NEW
    assert await scalar(db_url, "SELECT count(*) FROM node_pending_seqs WHERE node_id = 'node-e'") == 0
    assert outcomes[1].acks["node-e"] == ("shop-s", 5, OLD)
    assert outcomes[2].acks["node-e"] == ("shop-s", 3, NEW)
    assert outcomes[3].acks["node-e"] == ("shop-s", 3, NEW) and outcomes[3].duplicates == 1
    assert outcomes[3].stale_epoch == 1

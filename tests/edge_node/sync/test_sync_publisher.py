"""The outbox publisher against a REAL Mosquitto, with a fake central playing the acking side."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from tests.edge_node.sync.brokers import FakeCentral, Mosquitto, eventually
from tests.edge_node.sync.conftest import NODE, SHOP, PublisherFactory, add_results


def backlog(db: Database) -> int:
    return db.run_sync(outbox_store.backlog)


async def test_rows_are_published_in_seq_order_and_deleted_after_central_acks(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    central = FakeCentral(broker.port, auto_ack=False).start()
    try:
        seqs = add_results(db, 30)
        publisher = await make_publisher(broker.url, ack_timeout_seconds=30)
        assert await eventually(lambda: len(central.seqs()) == 30, 10)
        assert central.seqs() == seqs  # in seq order, each once
        envelope = central.envelopes[0]
        assert (envelope.node_id, envelope.shop_id, envelope.kind.value) == (NODE, SHOP, "results")
        assert envelope.body["job_id"] == "job-0"

        # The broker has PUBACKed every row (central holds them), yet nothing is deleted without central's ack.
        await asyncio.sleep(0.5)
        assert backlog(db) == 30
        assert publisher.in_flight == 30

        central.ack(NODE, seqs[9])
        assert await eventually(lambda: backlog(db) == 20, 5)
        remaining = db.run_sync(outbox_store.read_after, 0, 100)
        assert [row.seq for row in remaining] == seqs[10:]
        central.ack(NODE)
        assert await eventually(lambda: backlog(db) == 0 and publisher.in_flight == 0, 5)
        assert publisher.last_ack_at is not None
    finally:
        central.stop()


async def test_unacked_rows_are_resent_after_the_ack_timeout(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    central = FakeCentral(broker.port, auto_ack=False).start()
    try:
        seqs = add_results(db, 3)
        started = time.monotonic()
        await make_publisher(broker.url, ack_timeout_seconds=0.6)
        assert await eventually(lambda: len(central.seqs()) >= 6, 10)
        assert time.monotonic() - started >= 0.6  # not before the timeout
        assert central.seqs()[:6] == seqs + seqs  # all three again, in order
        assert all(row.attempts >= 1 for row in db.run_sync(outbox_store.read_after, 0, 10))  # resends counted

        central.ack(NODE)
        assert await eventually(lambda: backlog(db) == 0, 5)
        await asyncio.sleep(1.5)  # after the ack nothing is sent again
        sent = len(central.seqs())
        await asyncio.sleep(1.0)
        assert len(central.seqs()) == sent
    finally:
        central.stop()


async def test_rows_wait_while_the_broker_is_down_at_start_and_go_when_it_comes_up(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    broker.stop()
    add_results(db, 5)
    publisher = await make_publisher(broker.url)
    add_results(db, 5)  # more rows while offline
    await asyncio.sleep(1.0)
    assert not publisher.connected and backlog(db) == 10

    broker.start()
    central = FakeCentral(broker.port).start()
    try:
        assert await eventually(lambda: backlog(db) == 0, 15)
        assert sorted(set(central.seqs())) == list(range(1, 11))
        assert publisher.connected
    finally:
        central.stop()


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
async def test_broker_restart_mid_drain_loses_nothing(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory, crash: bool
) -> None:
    central = FakeCentral(broker.port).start()
    try:
        seqs = add_results(db, 2000)
        publisher = await make_publisher(broker.url, max_in_flight=50, ack_timeout_seconds=1.0)
        assert await eventually(lambda: len(set(central.seqs())) > 100, 20)
        broker.kill() if crash else broker.stop()  # mid-drain
        assert 0 < backlog(db) < 2000
        assert await eventually(lambda: not publisher.connected, 5)
        broker.start()
        assert await eventually(lambda: backlog(db) == 0, 40)
        assert set(central.seqs()) == set(seqs)  # every row reached central
        assert central.contiguous(NODE) == seqs[-1]
        assert publisher.in_flight == 0 and publisher.connected
    finally:
        central.stop()


async def test_in_flight_window_is_never_exceeded(
    broker: Mosquitto, db: Database, make_publisher: PublisherFactory
) -> None:
    central = FakeCentral(broker.port, auto_ack=False).start()
    try:
        add_results(db, 40)
        publisher = await make_publisher(broker.url, max_in_flight=7, ack_timeout_seconds=30)
        worst = 0
        for _ in range(20):
            if not await eventually(lambda: len(set(central.seqs())) > central.acked.get(NODE, 0), 5):
                break
            await asyncio.sleep(0.2)  # give the node time to overshoot, if it would
            unacked = len(set(central.seqs())) - central.acked.get(NODE, 0)
            worst = max(worst, unacked, publisher.in_flight)
            assert unacked <= 7
            if central.contiguous(NODE) == 40:
                central.ack(NODE)
                break
            central.ack(NODE)
        assert worst == 7
        assert await eventually(lambda: backlog(db) == 0, 5)
    finally:
        central.stop()


async def test_metrics_snapshots_are_queued_and_published(
    db: Database, central: FakeCentral, broker: Mosquitto, make_publisher: PublisherFactory
) -> None:
    publisher = await make_publisher(broker.url)
    assert await eventually(lambda: publisher.connected, 5)
    seq = await publisher.queue_metrics()
    assert seq is not None
    assert await publisher.queue_metrics() is None  # nothing changed: no second snapshot
    assert await eventually(lambda: backlog(db) == 0, 5)
    (envelope,) = [e for e in central.envelopes if e.seq == seq]
    assert envelope.kind.value == "metrics"
    assert envelope.body["summary"]["total_requests"] == 0
    assert envelope.body["node_id"] == NODE

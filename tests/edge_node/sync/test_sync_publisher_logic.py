"""Publisher logic against a fake link (no broker): ack validation, unsendable rows, status, wake-ups."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from edge_node.sync.outbox import UNSENDABLE_KEY, OutboxPublisher
from shared_models.messages import EPOCH_PATTERN, Ack, Envelope, NodeStatus
from shared_models.topics import ack_topic
from tests.edge_node.sync.brokers import eventually
from tests.edge_node.sync.conftest import NODE, SHOP, add_results, settings


class FakeLink:
    """Stands in for MqttLink: records publishes; the test drives connects and incoming messages."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, bool]] = []
        self.handlers: dict[str, Callable[[str, bytes], None]] = {}
        self.connect_handlers: list[Callable[[bool], None]] = []
        self.disconnect_handlers: list[Callable[[str], None]] = []
        self.connected = False

    def subscribe(self, topic: str, handler: Callable[[str, bytes], None], *, on_network_thread: bool = False) -> None:
        self.handlers[topic] = handler

    def on_connect(self, handler: Callable[[bool], None]) -> None:
        self.connect_handlers.append(handler)

    def on_disconnect(self, handler: Callable[[str], None]) -> None:
        self.disconnect_handlers.append(handler)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def hand_off(self, fn: Callable[..., None], *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, farewell: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        if farewell is not None:
            self.published.append((farewell[0], farewell[1], True))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        self.published.append((topic, payload, retain))
        return True

    def up(self) -> None:
        self.connected = True
        for handler in self.connect_handlers:
            handler(False)

    def deliver_ack(self, seq: int, node: str = NODE, epoch: str | None = None) -> None:
        ack = Ack(node_id=node, seq=seq, epoch=epoch, acked_at=datetime.now(UTC)).model_dump_json().encode()
        self.handlers[ack_topic(SHOP, NODE)](ack_topic(SHOP, NODE), ack)

    def envelopes(self) -> list[Envelope]:
        return [Envelope.model_validate_json(p) for t, p, _ in self.published if not t.endswith("/status")]


@pytest.fixture
async def fake(db: Database) -> AsyncIterator[tuple[FakeLink, OutboxPublisher]]:
    link = FakeLink()
    publisher = OutboxPublisher(settings("mqtt://127.0.0.1:1"), NODE, SHOP, db, link=link)  # type: ignore[arg-type]
    await publisher.start()
    yield link, publisher
    await publisher.stop()


def backlog(db: Database) -> int:
    return db.run_sync(outbox_store.backlog)


async def test_nothing_is_sent_until_connected_and_status_goes_first(
    db: Database, fake: tuple[FakeLink, OutboxPublisher]
) -> None:
    link, publisher = fake
    add_results(db, 2)
    publisher.wake()
    await asyncio.sleep(0.2)
    assert link.published == []
    link.up()
    assert await eventually(lambda: len(link.published) == 3, 2)
    topic, payload, retain = link.published[0]
    status = NodeStatus.model_validate_json(payload)
    assert topic.endswith("/up/status") and retain and status.state == "online" and status.backlog == 2
    assert [e.seq for e in link.envelopes()] == [1, 2]
    assert publisher.health() == {"enabled": True, "connected": True, "backlog": 2, "last_ack_at": None,
                                  "in_flight": 2}


async def test_only_valid_acks_for_sent_rows_delete(db: Database, fake: tuple[FakeLink, OutboxPublisher]) -> None:
    link, publisher = fake
    link.up()
    add_results(db, 4)
    publisher.wake()
    assert await eventually(lambda: publisher.in_flight == 4, 2)
    link.deliver_ack(4, node="another-node")
    link.handlers[ack_topic(SHOP, NODE)]("t", b"not json")
    link.deliver_ack(9)  # beyond anything sent: ignored, nothing deleted
    await asyncio.sleep(0.2)
    assert backlog(db) == 4 and publisher.last_ack_at is None
    link.deliver_ack(2)
    assert await eventually(lambda: backlog(db) == 2, 2)
    link.deliver_ack(1)  # stale
    await asyncio.sleep(0.1)
    assert publisher.in_flight == 2 and backlog(db) == 2


async def test_envelopes_carry_the_databases_epoch_and_acks_of_another_epoch_delete_nothing(
    db: Database, fake: tuple[FakeLink, OutboxPublisher]
) -> None:
    link, publisher = fake
    epoch = db.run_sync(outbox_store.epoch)
    assert re.fullmatch(EPOCH_PATTERN, epoch)
    link.up()
    add_results(db, 3)
    publisher.wake()
    assert await eventually(lambda: publisher.in_flight == 3, 2)
    assert {e.epoch for e in link.envelopes()} == {epoch}
    # An ack queued for this node's previous database (same node id, seqs of the old count): ignored.
    link.deliver_ack(3, epoch="20200101T000000-0123456789abcdef")
    await asyncio.sleep(0.2)
    assert backlog(db) == 3
    link.deliver_ack(3, epoch=epoch)
    assert await eventually(lambda: backlog(db) == 0, 2)


def test_a_new_database_gets_a_new_later_epoch(tmp_path: Path) -> None:
    first = Database(tmp_path / "a.sqlite3")
    time.sleep(1.1)  # epochs start with the creation second
    second = Database(tmp_path / "b.sqlite3")
    try:
        a, b = first.run_sync(outbox_store.epoch), second.run_sync(outbox_store.epoch)
        assert a != b and b > a
        assert first.run_sync(outbox_store.epoch) == a, "an epoch never changes for a database"
    finally:
        first.close()
        second.close()


async def test_rows_that_can_never_be_sent_go_as_stand_ins_so_seq_stays_contiguous(
    db: Database, fake: tuple[FakeLink, OutboxPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    link, publisher = fake

    def write(conn: Any) -> None:
        outbox_store.append(conn, "results", {"job_id": "a"})
        outbox_store.append(conn, "unknown-kind", {"job_id": "b"})
        conn.execute("INSERT INTO outbox (kind, payload, created_at) VALUES ('errors', '[1, 2]', 'now')")
        outbox_store.append(conn, "errors", {"job_id": "c"})

    db.run_sync(write)
    link.up()
    assert await eventually(lambda: len(link.envelopes()) == 4, 2)
    envelopes = link.envelopes()
    assert [e.seq for e in envelopes] == [1, 2, 3, 4]  # no gap: central's contiguous ack can pass every seq
    assert [e.kind.value for e in envelopes] == ["results", "errors", "errors", "errors"]
    assert [json.dumps(e.body) for e in (envelopes[0], envelopes[3])] == ['{"job_id": "a"}', '{"job_id": "c"}']
    stand_in = envelopes[1].body[UNSENDABLE_KEY]
    assert stand_in["seq"] == 2 and stand_in["kind"] == "unknown-kind" and stand_in["job_id"] == "b"
    assert "job_id" not in envelopes[1].body and "job_id" not in envelopes[2].body[UNSENDABLE_KEY]
    assert "cannot be sent; sending a stand-in" in caplog.text
    assert backlog(db) == 4  # nothing is deleted before central's ack
    link.deliver_ack(4)
    assert await eventually(lambda: backlog(db) == 0, 2)


async def test_a_finished_job_wakes_the_drain_at_once(db: Database, fake: tuple[FakeLink, OutboxPublisher]) -> None:
    link, publisher = fake
    link.up()
    await asyncio.sleep(0.1)
    add_results(db, 1)
    publisher.job_event("job_completed", None, {})
    assert await eventually(lambda: len(link.envelopes()) == 1, 0.5)  # well before the poll interval

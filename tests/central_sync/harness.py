"""Test harness for the central service: a fake node speaking the MQTT protocol, a running replica, database
queries, a Kafka reader, and `eventually` for conditions reached asynchronously."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import paho.mqtt.client as paho
from aiokafka import AIOKafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.ingest import Ingest
from central_sync.kafka import KafkaRelay
from shared_models.messages import SCHEMA_VERSION
from shared_models.topics import UpKind, ack_topic, up_topic
from tests.services import plain_dsn

#: Upper bound of any wait in these tests; the conditions are normally met in well under a second.
WAIT_SECONDS = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT_SECONDS, what: str = "") -> None:
    """Poll `check` until it is true; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not reached in {within} s: {what}")


async def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of one query against the test database."""
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def scalar(url: str, sql: str, *args: Any) -> Any:
    """The first value of one query."""
    rows = await query(url, sql, *args)
    return rows[0][0] if rows else None


def result_body(
    job_id: str, shop_id: str, *, barcode: str | None = None, name: str = "Milk 1L", price: Any = "85.00",
    text: str = "MILK 1L TK 85.00",
) -> dict[str, Any]:
    """A results body like edge_node.store.jobs._event for a completed product job."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {
        "job_id": job_id, "shop_id": shop_id, "user_id": "clerk-1", "document_type": "product",
        "status": "completed", "attempts": 1, "created_at": now, "completed_at": now, "timestamp": now,
        "result": {
            "text": text, "confidence": 0.93,
            "lines": [{"text": text, "confidence": 0.93, "bbox": {"x": 1, "y": 2, "width": 300, "height": 40}}],
            "barcodes": [{"type": "EAN13", "value": barcode, "confidence": 1.0}] if barcode else [],
            "structured": {"product_name": name, "price": price, "currency": "BDT", "barcode": barcode},
            "model_used": "ppocr", "processing_time_ms": 42.5,
        },
    }


def error_body(job_id: str, shop_id: str, code: str = "LOW_QUALITY") -> dict[str, Any]:
    """An errors body for a failed job."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {
        "job_id": job_id, "shop_id": shop_id, "user_id": "clerk-1", "document_type": "receipt", "status": "failed",
        "attempts": 1, "created_at": now, "completed_at": now, "timestamp": now,
        "error": {"code": code, "message": "image too blurred"},
    }


class FakeNode:
    """The node side of the sync protocol: publishes envelopes (QoS 1) and records the acks it receives."""

    def __init__(self, mqtt_url: str, shop_id: str, node_id: str) -> None:
        self.shop_id, self.node_id = shop_id, node_id
        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        self._lock = threading.Lock()
        self._acks: list[int] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fake-{shop_id}-{node_id}", protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(host, int(port))
        self.client.subscribe(ack_topic(shop_id, node_id), qos=1)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("fake node could not subscribe to its ack topic")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._acks.append(int(json.loads(message.payload)["seq"]))

    @property
    def acks(self) -> list[int]:
        """Ack seqs received so far, in arrival order."""
        with self._lock:
            return list(self._acks)

    @property
    def acked(self) -> int:
        """The highest seq acked so far (a node keeps the max: acks from two replicas may cross)."""
        return max(self.acks, default=0)

    def envelope(self, seq: int, kind: UpKind, body: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """An envelope of this node."""
        doc = {
            "schema_version": SCHEMA_VERSION, "node_id": self.node_id, "shop_id": self.shop_id, "seq": seq,
            "kind": kind.value, "sent_at": datetime.now(UTC).isoformat(), "body": body,
        }
        doc.update(overrides)
        return doc

    async def publish(self, payload: dict[str, Any] | bytes, kind: UpKind = UpKind.RESULTS, topic: str | None = None,
                      *, retain: bool = False) -> None:
        """Publish one message on this node's topic of `kind` (or `topic`) and wait for the broker's PUBACK."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic or up_topic(self.shop_id, self.node_id, kind), data, qos=1, retain=retain)
        deadline = time.monotonic() + WAIT_SECONDS
        while not info.is_published():
            if time.monotonic() > deadline:
                raise AssertionError("the broker did not acknowledge a publish")
            await asyncio.sleep(0.005)

    async def send(self, seq: int, kind: UpKind, body: dict[str, Any], **overrides: Any) -> None:
        """Publish an envelope of this node."""
        await self.publish(self.envelope(seq, kind, body, **overrides), kind)

    async def wait_acked(self, seq: int, within: float = WAIT_SECONDS) -> None:
        """Wait until central has acked `seq`."""
        async def reached() -> bool:
            return self.acked >= seq
        await eventually(reached, within, f"{self.node_id} acked {seq} (acks so far {self.acks[-5:]})")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.asynccontextmanager
async def running_central(config: CentralConfig, *, kafka: bool = True) -> AsyncIterator[tuple[Ingest, KafkaRelay]]:
    """One central replica (ingest + relay) against the configured services, connected before the body runs."""
    engine = create_engine(config.database)
    relay = KafkaRelay(config.kafka, engine, client_id=config.mqtt.client_id)
    ingest = Ingest(config, engine, on_outbox=relay.wake)
    if kafka:
        await relay.start()
    await ingest.start()
    try:
        if not await ingest.link.wait_connected(WAIT_SECONDS):
            raise AssertionError("central did not connect to the broker")
        await asyncio.sleep(0.2)  # the SUBSCRIBE is sent on connect; give the broker a moment to register it
        yield ingest, relay
    finally:
        await ingest.stop()
        await relay.stop()
        await engine.dispose()


async def read_topic(bootstrap: str, topic: str, count: int, within: float = WAIT_SECONDS) -> list[tuple[str, dict]]:
    """(key, value) of the first `count` records of a topic, from every partition (manual assignment)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records: list[tuple[str, dict]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + within
        while not partitions and time.monotonic() < deadline:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(topic) or set()
            await asyncio.sleep(0.1)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                records.extend((m.key.decode(), json.loads(m.value)) for m in messages)
    finally:
        await consumer.stop()
    return records

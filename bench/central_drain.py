"""Drain rate of the central ingest: N result envelopes -> PostgreSQL, in results per second.

    .venv/bin/python -m bench.central_drain [--messages 10000] [--nodes 10] [--batch 500] [--live] [--no-kafka]
                                            [--json PATH]

Starts its own Mosquitto (tests/services.py), creates and migrates a throw-away database on the local PostgreSQL
(127.0.0.1:5432) and, unless --no-kafka, a tansu broker for the relay. By default the envelopes are PRE-PUBLISHED
into central's persistent session while it is offline (a node fleet coming back after an outage); with --live
they are published while central runs. The clock runs from central's start (or the first publish with --live)
until every job is in PostgreSQL. Run it from the repository root. `--json PATH` also writes the figures there
(bench/sync_figures.py puts them into docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.db.migrate import upgrade
from central_sync.ingest import Ingest
from central_sync.kafka import KafkaRelay
from shared_models.messages import SCHEMA_VERSION
from shared_models.topics import UpKind, central_subscription, up_topic
from tests.services import Mosquitto, PostgresServer, Tansu, plain_dsn

CLIENT_ID = "central-bench"
#: Give up waiting for the drain after this long.
DRAIN_TIMEOUT_SECONDS = 600.0


def _envelope(shop: str, node: str, seq: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    text = f"PRODUCT {seq} 500G TK {seq % 500}.50"
    body: dict[str, Any] = {
        "job_id": f"{node}-job-{seq}", "shop_id": shop, "user_id": "clerk-1", "document_type": "product",
        "status": "completed", "attempts": 1, "created_at": now, "completed_at": now, "timestamp": now,
        "result": {
            "text": text, "confidence": 0.91, "model_used": "ppocr", "processing_time_ms": 38.0,
            "lines": [
                {"text": part, "confidence": 0.9, "bbox": {"x": 10, "y": 40 * i, "width": 300, "height": 36},
                 "words": [{"text": part, "confidence": 0.9}]}
                for i, part in enumerate(text.split(" "))
            ],
            "barcodes": [{"type": "EAN13", "value": f"{890000000000 + seq % 997}", "confidence": 1.0}],
            "structured": {"product_name": f"PRODUCT {seq % 997}", "price": f"{seq % 500}.50", "currency": "BDT",
                           "barcode": f"{890000000000 + seq % 997}"},
        },
    }
    doc = {"schema_version": SCHEMA_VERSION, "node_id": node, "shop_id": shop, "seq": seq, "kind": "results",
           "sent_at": now, "body": body}
    return json.dumps(doc).encode()


def _client(client_id: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    return client


def _register_session(port: int) -> None:
    """Create central's persistent session and subscription, then leave: the broker queues for it."""
    client = _client(CLIENT_ID)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    client.subscribe(central_subscription(), qos=1)[1]
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


def _publish_all(port: int, messages: int, nodes: int) -> float:
    """Publish every envelope at QoS 1 and wait for the broker's acks; returns seconds taken."""
    client = _client("bench-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    infos = []
    for index in range(messages):
        node, seq = f"node-{index % nodes}", index // nodes + 1
        shop = f"shop-{index % nodes % 3}"
        infos.append(client.publish(up_topic(shop, node, UpKind.RESULTS), _envelope(shop, node, seq), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _wait_for(dsn: str, sql: str, target: int) -> float:
    started = time.perf_counter()
    while await _count(dsn, sql) < target:
        if time.perf_counter() - started > DRAIN_TIMEOUT_SECONDS:
            raise TimeoutError(f"not drained after {DRAIN_TIMEOUT_SECONDS} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _run(args: argparse.Namespace, broker: Mosquitto, db_url: str, kafka: str | None) -> dict[str, Any]:
    config = CentralConfig.model_validate({
        "database": {"url": db_url, "migrate_on_start": False},
        "mqtt": {"url": broker.url, "client_id": CLIENT_ID, "receive_maximum": args.receive_maximum},
        "ingest": {"batch_max_messages": args.batch, "batch_max_wait_ms": args.wait_ms},
        "kafka": {"enabled": kafka is not None, "bootstrap": kafka or "127.0.0.1:1"},
    })
    await upgrade(db_url)
    dsn = plain_dsn(db_url)
    publish_seconds = 0.0
    if not args.live:
        _register_session(broker.port)
        publish_seconds = _publish_all(broker.port, args.messages, args.nodes)
    engine = create_engine(config.database)
    relay = KafkaRelay(config.kafka, engine)
    ingest = Ingest(config, engine, on_outbox=relay.wake)
    if kafka is not None:
        await relay.start()
    await ingest.start()
    if args.live:
        if not await ingest.link.wait_connected(10):
            raise RuntimeError("central did not connect")
        await asyncio.sleep(0.3)
        publisher = asyncio.create_task(asyncio.to_thread(_publish_all, broker.port, args.messages, args.nodes))
    drain = await _wait_for(dsn, "SELECT count(*) FROM ocr_processing_jobs", args.messages)
    if args.live:
        publish_seconds = await publisher
    relay_seconds = None
    if kafka is not None:
        relay_seconds = drain + await _wait_for(dsn, "SELECT count(*) FROM kafka_outbox WHERE sent_at IS NOT NULL",
                                                args.messages)
    stats = ingest.stats
    await ingest.stop()
    await relay.stop()
    await engine.dispose()
    mode = "live" if args.live else "pre-published"
    print(f"central drain ({mode}): {args.messages} results from {args.nodes} nodes, batch <= {args.batch}")
    print(f"  publish: {publish_seconds:.2f} s ({args.messages / publish_seconds:.0f} msg/s into Mosquitto)")
    print(f"  drain to PostgreSQL: {drain:.2f} s = {args.messages / drain:.0f} results/s")
    print(f"  batches: {stats.batches} (mean {stats.received / max(stats.batches, 1):.0f} messages), "
          f"accepted {stats.accepted}, duplicates {stats.duplicates}, rejected {stats.rejected}, "
          f"acks sent {stats.acks_sent}")
    if relay_seconds is not None:
        rate = args.messages / relay_seconds
        print(f"  all relayed to Kafka (tansu) after {relay_seconds:.2f} s = {rate:.0f} events/s")
    return {
        "messages": args.messages, "nodes": args.nodes, "batch": args.batch, "mode": mode,
        "publish_seconds": round(publish_seconds, 3), "drain_seconds": round(drain, 3),
        "drain_rate": round(args.messages / drain, 1), "batches": stats.batches, "accepted": stats.accepted,
        "duplicates": stats.duplicates, "rejected": stats.rejected,
        "relay_seconds": None if relay_seconds is None else round(relay_seconds, 3),
        "relay_rate": None if relay_seconds is None else round(args.messages / relay_seconds, 1),
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="ingest.batch_max_messages")
    parser.add_argument("--wait-ms", type=float, default=20.0, help="ingest.batch_max_wait_ms")
    parser.add_argument("--receive-maximum", type=int, default=2000, help="mqtt.receive_maximum")
    parser.add_argument("--live", action="store_true", help="publish while central runs")
    parser.add_argument("--no-kafka", action="store_true", help="do not run the relay")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser


def main() -> None:
    """Entry point."""
    args = build_parser().parse_args()
    pg = PostgresServer()
    db_url = pg.create_database("central_bench")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto").start()
        tansu = None if args.no_kafka else Tansu(Path(tmp) / "tansu").start()
        try:
            figures = asyncio.run(_run(args, broker, db_url, tansu.bootstrap if tansu else None))
        finally:
            broker.stop()
            if tansu is not None:
                tansu.stop()
            pg.drop_database(db_url)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

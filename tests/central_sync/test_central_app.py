"""GET /api/v1/health of the running service: database, MQTT and Kafka state plus the ingest counters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from central_sync.app import create_app
from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, eventually, result_body

pytestmark = pytest.mark.integration


async def _health(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/health")
    body = await response.json()
    assert body["success"] is True
    return body["data"] | {"http_status": response.status}


async def test_health_reports_services_and_counters(make_config, broker, tansu, aiohttp_client) -> None:
    config = make_config(kafka=tansu.bootstrap)
    config.database.migrate_on_start = True  # already at head: a no-op, but the start-up path runs
    client = await aiohttp_client(create_app(config))
    node = FakeNode(broker.url, "shop-h", "node-h")
    try:
        async def healthy() -> bool:
            return (await _health(client))["status"] == "healthy"

        await eventually(healthy, what="MQTT and Kafka connected")
        await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-h"))
        await node.wait_acked(1)

        async def relayed() -> bool:
            return (await _health(client))["kafka"]["sent"] == 1

        await eventually(relayed, what="the job relayed")
        data = await _health(client)
        assert data["http_status"] == 200 and data["database"] == {"connected": True}
        assert data["mqtt"]["connected"] and data["mqtt"]["client_id"] == "central-a"
        assert data["kafka"]["connected"] and data["kafka"]["pending_outbox"] == 0
        assert data["ingest"]["received"] == 1 and data["ingest"]["accepted"] == 1
        assert data["ingest"]["acks_sent"] == 1 and data["ingest"]["rejected"] == 0
    finally:
        node.close()


async def test_health_is_degraded_while_kafka_is_down(make_config, broker, aiohttp_client) -> None:
    client = await aiohttp_client(create_app(make_config()))
    node = FakeNode(broker.url, "shop-h", "node-h")
    try:
        async def subscribed() -> bool:
            return (await _health(client))["mqtt"]["connected"]

        await eventually(subscribed, what="MQTT connected")
        await asyncio.sleep(0.2)  # the SUBSCRIBE follows the CONNACK
        await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-h"))
        await node.wait_acked(1)
        data = await _health(client)
        assert data["status"] == "degraded" and data["http_status"] == 200
        assert data["kafka"]["connected"] is False and data["kafka"]["pending_outbox"] == 1
        assert data["mqtt"]["connected"] is True
    finally:
        node.close()

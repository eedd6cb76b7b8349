"""The node's API with sync on: the /health sync block against a real Mosquitto, and an API that stays fast
while the broker is unreachable or silent."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from support import encode, render_lines

from edge_node.app import create_app
from edge_node.auth import issue_token
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from tests.edge_node.sync.brokers import FakeCentral, Mosquitto, eventually, free_port
from tests.edge_node.sync.conftest import settings

SECRET = "test-secret-that-is-long-enough-for-hs256"  # the root conftest's edge_config
#: /health must answer within this even when the broker is down or hangs (it is usually ~5 ms).
HEALTH_BUDGET_SECONDS = 0.5

Client = TestClient[Any, Any]
ClientFactory = Callable[[EdgeConfig], Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[Client]], engines: EngineSet) -> ClientFactory:
    async def factory(config: EdgeConfig) -> Client:
        return await aiohttp_client(create_app(config, engines))
    return factory


def with_sync(config: EdgeConfig, url: str, **overrides: Any) -> EdgeConfig:
    return config.model_copy(update={"sync": settings(url, **overrides)})


async def ocr(client: Client) -> dict[str, Any]:
    data = FormData()
    data.add_field("image", encode(render_lines(["MILK 1L", "Tk 95.00"])), filename="label.png",
                   content_type="image/png")
    token = issue_token(SECRET, user_id="clerk-1", shop_id="shop-a", ttl_seconds=600, role="clerk")
    response = await client.post("/api/v1/ocr/process", data=data, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    return dict((await response.json())["data"])


async def sync_block(client: Client) -> dict[str, Any]:
    response = await client.get("/api/v1/health")
    assert response.status == 200
    return dict((await response.json())["data"]["sync"])


async def test_health_sync_block_when_sync_is_off(make_client: ClientFactory, edge_config: EdgeConfig) -> None:
    client = await make_client(edge_config)
    await ocr(client)
    assert await sync_block(client) == {"enabled": False, "connected": False, "backlog": 1, "last_ack_at": None,
                                        "in_flight": 0}


async def test_health_sync_block_follows_publish_and_central_ack(
    make_client: ClientFactory, edge_config: EdgeConfig, broker: Mosquitto
) -> None:
    central = FakeCentral(broker.port, auto_ack=False).start()
    try:
        config = with_sync(edge_config, broker.url, ack_timeout_seconds=30)
        client = await make_client(config)
        result = await ocr(client)
        assert await eventually(lambda: len(central.envelopes) == 1, 5)
        envelope = central.envelopes[0]
        assert envelope.kind.value == "results" and envelope.body["job_id"] == result["id"]
        assert envelope.node_id == config.node.node_id and envelope.shop_id == "shop-a"
        block = await sync_block(client)
        assert block == {"enabled": True, "connected": True, "backlog": 1, "last_ack_at": None, "in_flight": 1}

        central.ack(config.node.node_id)
        for _ in range(50):
            block = await sync_block(client)
            if block["backlog"] == 0:
                break
            await asyncio.sleep(0.05)
        assert block["backlog"] == 0 and block["in_flight"] == 0 and block["connected"]
        assert block["last_ack_at"] is not None
    finally:
        central.stop()


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A port that accepts TCP connections and never answers (a hung broker)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"mqtt://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_api_stays_fast_while_the_broker_is_unreachable(
    make_client: ClientFactory, edge_config: EdgeConfig, silent_broker: str, kind: str
) -> None:
    url = silent_broker if kind == "silent" else f"mqtt://127.0.0.1:{free_port()}"
    started = time.monotonic()
    client = await make_client(with_sync(edge_config, url, reconnect_min_seconds=0.05, reconnect_max_seconds=0.2))
    assert time.monotonic() - started < 5  # start-up does not wait for the broker

    slowest = 0.0
    for _ in range(10):
        begin = time.monotonic()
        block = await sync_block(client)
        slowest = max(slowest, time.monotonic() - begin)
    assert slowest < HEALTH_BUDGET_SECONDS
    assert block["enabled"] and not block["connected"]

    begin = time.monotonic()
    result = await ocr(client)
    assert result["text"] and time.monotonic() - begin < 10
    block = await sync_block(client)
    assert block["backlog"] == 1 and block["in_flight"] == 0

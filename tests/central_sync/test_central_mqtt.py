"""The replica's MQTT session is persistent: what nodes publish while central is down, even across a broker
restart, is delivered when central comes back under the same client id."""

from __future__ import annotations

import pytest

from central_sync.mqtt import broker_address
from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, result_body, running_central, scalar

pytestmark = pytest.mark.integration


def test_broker_address() -> None:
    assert broker_address("mqtt://broker:1884") == ("broker", 1884, False)
    assert broker_address("mqtts://broker") == ("broker", 8883, True)


async def test_messages_wait_in_the_session_while_central_and_the_broker_restart(make_config, broker, db_url) -> None:
    config = make_config("central-persistent")
    async with running_central(config, kafka=False):
        pass  # registers the persistent session and its shared subscription
    node = FakeNode(broker.url, "shop-m", "node-m")
    try:
        for seq in range(1, 6):
            await node.send(seq, UpKind.RESULTS, result_body(f"job-{seq}", "shop-m"))
    finally:
        node.close()
    broker.stop()
    broker.start()  # same port and persistence file
    node = FakeNode(broker.url, "shop-m", "node-m")
    try:
        async with running_central(config, kafka=False) as (ingest, _):
            await node.wait_acked(5)
            assert ingest.stats.accepted == 5
        assert await scalar(db_url, "SELECT count(*) FROM ocr_processing_jobs") == 5
    finally:
        node.close()

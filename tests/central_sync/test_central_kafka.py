"""Kafka down never stops ingest: writes and acks go on, the outbox fills; once tansu is up the relay catches up
and every event reaches its topic."""

from __future__ import annotations

import pytest

from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, eventually, read_topic, result_body, running_central, scalar
from tests.services import Tansu, free_port, port_open

pytestmark = pytest.mark.integration

#: Events published while Kafka is down, then after it comes up.
DOWN, UP = 60, 20


async def test_ingest_goes_on_while_kafka_is_down_and_the_relay_catches_up(make_config, broker, db_url, tmp_path):
    port = free_port()
    assert not port_open(port)
    config = make_config(kafka=f"127.0.0.1:{port}")
    node = FakeNode(broker.url, "shop-k", "node-k")
    tansu = Tansu(tmp_path / "tansu", port=port)
    try:
        async with running_central(config) as (ingest, relay):
            for seq in range(1, DOWN + 1):
                await node.send(seq, UpKind.RESULTS, result_body(f"job-{seq}", "shop-k"))
            await node.wait_acked(DOWN)
            assert await scalar(db_url, "SELECT count(*) FROM ocr_processing_jobs") == DOWN
            assert await scalar(db_url, "SELECT count(*) FROM kafka_outbox WHERE sent_at IS NULL") == DOWN
            assert not relay.connected and relay.failures >= 1 and relay.last_error

            tansu.start()
            for seq in range(DOWN + 1, DOWN + UP + 1):
                await node.send(seq, UpKind.RESULTS, result_body(f"job-{seq}", "shop-k"))
            await node.wait_acked(DOWN + UP)

            async def drained() -> bool:
                return await scalar(db_url, "SELECT count(*) FROM kafka_outbox WHERE sent_at IS NULL") == 0

            await eventually(drained, what="the relay sent the backlog")
            records = await read_topic(tansu.bootstrap, "ocr.completed", DOWN + UP)
            assert sorted(key for key, _ in records) == sorted(f"job-{i}" for i in range(1, DOWN + UP + 1))
            assert relay.connected and relay.sent == DOWN + UP
            assert ingest.stats.accepted == DOWN + UP
    finally:
        node.close()
        tansu.stop()


async def test_the_relay_survives_kafka_hanging_mid_stream(make_config, broker, db_url, tmp_path) -> None:
    tansu = Tansu(tmp_path / "tansu").start()
    config = make_config(kafka=tansu.bootstrap)
    node = FakeNode(broker.url, "shop-k", "node-k2")
    try:
        async with running_central(config) as (_, relay):
            for seq in range(1, 11):
                await node.send(seq, UpKind.RESULTS, result_body(f"a-{seq}", "shop-k"))
            await eventually(_sent(db_url, 10), what="the first ten relayed")

            tansu.pause()  # SIGSTOP: connections stay open, requests time out (tansu keeps its memory storage)
            for seq in range(11, 31):
                await node.send(seq, UpKind.RESULTS, result_body(f"a-{seq}", "shop-k"))
            await node.wait_acked(30)  # ingest and acks go on without Kafka

            async def failed() -> bool:
                return relay.failures >= 1

            await eventually(failed, what="the relay notices the hung broker")
            tansu.resume()
            await eventually(_sent(db_url, 30), what="the backlog relayed after Kafka returned")
            records = await read_topic(tansu.bootstrap, "ocr.completed", 30)
            assert {key for key, _ in records} == {f"a-{seq}" for seq in range(1, 31)}
            assert relay.connected
    finally:
        node.close()
        tansu.resume()
        tansu.stop()


def _sent(db_url: str, count: int):
    async def check() -> bool:
        return await scalar(db_url, "SELECT count(*) FROM kafka_outbox WHERE sent_at IS NOT NULL") == count

    return check

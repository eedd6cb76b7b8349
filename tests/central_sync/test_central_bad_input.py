"""Bad input at the centre: every kind of bad message lands in `rejects` with its reason, is never written as
data, never stops the service, and only a trusted, permanently bad message is acked past."""

from __future__ import annotations

import json

import pytest

from shared_models.messages import MAX_MESSAGE_BYTES, SCHEMA_VERSION
from shared_models.topics import UpKind, up_topic
from tests.central_sync.harness import FakeNode, eventually, query, result_body, running_central, scalar

pytestmark = pytest.mark.integration


async def test_each_bad_message_is_rejected_with_its_reason_and_ingest_goes_on(make_config, broker, db_url) -> None:
    node = FakeNode(broker.url, "shop-a", "node-1")
    other = FakeNode(broker.url, "shop-b", "node-9")
    try:
        async with running_central(make_config(), kafka=False) as (ingest, _):
            await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-a"))
            await other.send(1, UpKind.RESULTS, result_body("job-b1", "shop-b"))
            await node.wait_acked(1)
            await other.wait_acked(1)

            # No identity at all: nothing is acked for these.
            await node.publish(b"{not json", UpKind.RESULTS)
            await node.publish(b"\xff\xfe binary", UpKind.RESULTS)
            # Trusted identity (payload shop/node = topic), permanently bad: rejected AND acked past (seqs 2-5).
            await node.send(2, UpKind.RESULTS, result_body("job-2", "shop-a"), schema_version=0)
            await node.send(3, UpKind.RESULTS, {"no": "job id"})
            big = result_body("job-4", "shop-a", text="x" * (MAX_MESSAGE_BYTES + 10))
            await node.publish(node.envelope(4, UpKind.RESULTS, big))
            await node.send(5, UpKind.RESULTS, result_body("job-5", "shop-a") | {"attempts": 2**40})  # DB refuses
            # A newer protocol than ours: rejected, NOT acked (the node keeps it until central is upgraded).
            await node.send(6, UpKind.RESULTS, result_body("job-6", "shop-a"), schema_version=SCHEMA_VERSION + 1)
            # Envelope of shop-b/node-9 published under node-1's topic: must not move either node's ack.
            forged = other.envelope(2, UpKind.RESULTS, result_body("job-b2", "shop-b"))
            await node.publish(forged, UpKind.RESULTS)
            # node-9 (registered under shop-b) writing under shop-a's topic with a matching envelope.
            hijack = other.envelope(2, UpKind.RESULTS, result_body("job-h", "shop-a"), shop_id="shop-a")
            await node.publish(hijack, topic=up_topic("shop-a", "node-9", UpKind.RESULTS))

            await node.wait_acked(5)

            async def all_rejected() -> bool:
                return await scalar(db_url, "SELECT count(*) FROM rejects") == 9

            await eventually(all_rejected, what="nine rejects recorded")
            rows = await query(db_url, "SELECT reason, seq, skipped, payload_bytes FROM rejects ORDER BY id")
            reasons = [r["reason"] for r in rows]
            assert reasons[0].startswith("malformed JSON") and reasons[1].startswith("malformed JSON")
            assert reasons[2].startswith("unknown schema_version 0")
            assert reasons[3].startswith("invalid results body") and "job_id" in reasons[3]
            assert reasons[4].startswith("oversized")
            assert reasons[5].startswith("database refused it")
            assert reasons[6].startswith(f"unknown schema_version {SCHEMA_VERSION + 1}")
            assert reasons[7] == "envelope shop-b/node-9 differs from topic shop-a/node-1"
            assert reasons[8] == "node node-9 is registered under shop shop-b, not shop-a"
            assert [r["skipped"] for r in rows] == [False, False, True, True, True, True, False, False, False]
            assert [r["seq"] for r in rows][2:6] == [2, 3, 4, 5]
            assert rows[4]["payload_bytes"] > MAX_MESSAGE_BYTES

            # Nothing bad was written as data, and neither node's ack moved for the forged messages.
            jobs = await query(db_url, "SELECT job_id FROM ocr_processing_jobs ORDER BY job_id")
            assert [r["job_id"] for r in jobs] == ["job-1", "job-b1"]
            assert node.acked == 5 and other.acked == 1
            assert await scalar(db_url, "SELECT acked_seq FROM nodes WHERE node_id = 'node-9'") == 1

            # The service keeps working: the next good message of each node is written and acked.
            await node.send(6, UpKind.RESULTS, result_body("job-6", "shop-a"))
            await other.send(2, UpKind.RESULTS, result_body("job-b2", "shop-b"))
            await node.wait_acked(6)
            await other.wait_acked(2)
            assert ingest.stats.rejected == 9 and ingest.stats.skipped == 4
    finally:
        node.close()
        other.close()


async def test_rejects_keep_a_readable_excerpt(make_config, broker, db_url) -> None:
    node = FakeNode(broker.url, "shop-a", "node-1")
    try:
        async with running_central(make_config(), kafka=False):
            payload = json.dumps({"schema_version": SCHEMA_VERSION, "hello": "x" * 5000}).encode()
            await node.publish(payload, UpKind.RESULTS)

            async def recorded() -> bool:
                return await scalar(db_url, "SELECT count(*) FROM rejects") == 1

            await eventually(recorded, what="the reject")
            row = (await query(db_url, "SELECT reason, payload_excerpt, payload_bytes, seq FROM rejects"))[0]
            assert row["reason"].startswith("invalid envelope")
            assert row["payload_excerpt"].startswith('{"schema_version"') and len(row["payload_excerpt"]) == 500
            assert row["payload_bytes"] == len(payload) and row["seq"] is None
    finally:
        node.close()

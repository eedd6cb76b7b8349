"""Ingest end to end on real services: envelopes from a node over Mosquitto land in PostgreSQL exactly once,
acks carry the highest contiguous seq, and the Kafka outbox reaches tansu keyed by job id."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared_models.messages import NodeStatus
from shared_models.topics import UpKind, up_topic
from tests.central_sync.harness import (
    FakeNode,
    error_body,
    eventually,
    query,
    read_topic,
    result_body,
    running_central,
    scalar,
)

pytestmark = pytest.mark.integration


async def test_duplicates_and_out_of_order_seqs_are_written_once_and_acked_contiguously(
    make_config, broker, tansu, db_url
) -> None:
    config = make_config(kafka=tansu.bootstrap)
    node = FakeNode(broker.url, "shop-a", "node-1")
    try:
        async with running_central(config):
            for seq in (1, 2, 2, 4):  # 2 twice, 3 missing
                await node.send(seq, UpKind.RESULTS, result_body(f"job-{seq}", "shop-a"))

            async def three_jobs() -> bool:
                return await scalar(db_url, "SELECT count(*) FROM ocr_processing_jobs") == 3

            await eventually(three_jobs, what="jobs 1, 2 and 4 written")
            await node.wait_acked(2)
            await asyncio.sleep(0.3)
            assert node.acked == 2, "seq 4 is committed but 3 is missing: the ack must stay at 2"
            assert await scalar(db_url, "SELECT seq FROM node_pending_seqs WHERE node_id = 'node-1'") == 4

            await node.send(3, UpKind.RESULTS, result_body("job-3", "shop-a"))
            await node.wait_acked(4)
            acks_before = len(node.acks)
            await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-a"))  # a resend after the ack
            await eventually(_more_acks(node, acks_before), what="the resend is acked again")
            assert node.acks[-1] == 4

            rows = await query(db_url, "SELECT job_id, count(*) AS n FROM ocr_processing_jobs GROUP BY job_id")
            assert {r["job_id"]: r["n"] for r in rows} == {f"job-{i}": 1 for i in range(1, 5)}
            assert await scalar(db_url, "SELECT count(*) FROM kafka_outbox") == 4
            assert await scalar(db_url, "SELECT acked_seq FROM nodes WHERE node_id = 'node-1'") == 4
            assert await scalar(db_url, "SELECT count(*) FROM node_pending_seqs") == 0
            job = (await query(db_url, "SELECT * FROM ocr_processing_jobs WHERE job_id = 'job-3'"))[0]
            assert job["shop_id"] == "shop-a" and job["node_id"] == "node-1" and job["status"] == "completed"
            assert job["extracted_text"] == "MILK 1L TK 85.00" and job["confidence_score"] == pytest.approx(0.93)
            assert json.loads(job["structured_data"])["product_name"] == "Milk 1L"
            assert job["model_used"] == "ppocr" and job["processing_time_ms"] == pytest.approx(42.5)

            records = await read_topic(tansu.bootstrap, "ocr.completed", 4)
            assert sorted(key for key, _ in records) == [f"job-{i}" for i in range(1, 5)]
            for key, value in records:
                assert value["job_id"] == key and value["node_id"] == "node-1" and value["shop_id"] == "shop-a"
                assert value["result"]["text"] == "MILK 1L TK 85.00" and value["timestamp"]

            async def all_sent() -> bool:
                return await scalar(db_url, "SELECT count(*) FROM kafka_outbox WHERE sent_at IS NULL") == 0

            await eventually(all_sent, what="outbox rows marked sent")
    finally:
        node.close()


def _more_acks(node: FakeNode, count: int):
    async def check() -> bool:
        return len(node.acks) > count

    return check


async def test_errors_metrics_and_status_reach_their_tables_and_topics(make_config, broker, tansu, db_url) -> None:
    config = make_config(kafka=tansu.bootstrap)
    node = FakeNode(broker.url, "shop-b", "node-2")
    try:
        async with running_central(config):
            await node.send(1, UpKind.ERRORS, error_body("job-x", "shop-b"))
            await node.send(2, UpKind.METRICS, {
                "metrics": [
                    {"model_name": "ppocr", "metric_name": "latency_ms", "value": 41.0, "job_id": "job-x"},
                    {"model_name": "ppocr", "metric_name": "confidence", "value": 0.9},
                ],
            })
            await node.send(3, UpKind.METRICS, {"total_requests": 10, "by_model": {"ppocr": {"jobs": 9}}})
            await node.send(4, UpKind.STATUS, {"state": "online", "version": "0.1.0",
                                               "model_versions": {"ppocr": "v6"}, "backlog": 3})
            await node.wait_acked(4)

            job = (await query(db_url, "SELECT * FROM ocr_processing_jobs"))[0]
            assert (job["job_id"], job["status"], job["error_code"]) == ("job-x", "failed", "LOW_QUALITY")
            errors = await query(db_url, "SELECT node_id, shop_id, job_id, code, message FROM ocr_error_logs")
            assert [tuple(r) for r in errors] == [("node-2", "shop-b", "job-x", "LOW_QUALITY", "image too blurred")]
            metrics = await query(db_url, "SELECT model_name, metric_name, value FROM ocr_model_metrics ORDER BY id")
            assert [tuple(r) for r in metrics] == [
                ("ppocr", "latency_ms", 41.0), ("ppocr", "confidence", 0.9),
                ("node", "total_requests", 10.0), ("ppocr", "jobs", 9.0),
            ]
            status = (await query(db_url, "SELECT * FROM nodes WHERE node_id = 'node-2'"))[0]
            assert (status["status"], status["version"], status["backlog"]) == ("online", "0.1.0", 3)
            assert status["model_version"] == "ppocr=v6" and status["last_seen"] is not None

            # The last will / retained status is a bare NodeStatus on the status topic: no seq, no ack.
            will = NodeStatus(node_id="node-2", shop_id="shop-b", state="offline")
            acks = len(node.acks)
            will_topic = up_topic("shop-b", "node-2", UpKind.STATUS)
            await node.publish(will.model_dump_json().encode(), UpKind.STATUS, will_topic)

            async def offline() -> bool:
                return await scalar(db_url, "SELECT status FROM nodes WHERE node_id = 'node-2'") == "offline"

            await eventually(offline, what="the last will marks the node offline")
            assert len(node.acks) == acks

            failed = await read_topic(tansu.bootstrap, "ocr.failed", 1)
            assert failed[0][0] == "job-x" and failed[0][1]["error"]["code"] == "LOW_QUALITY"
            metric_events = await read_topic(tansu.bootstrap, "ocr.metrics", 2)
            assert {key for key, _ in metric_events} == {"node-2"}
            assert len(metric_events) == 2
    finally:
        node.close()


async def test_a_job_resent_under_a_new_seq_stays_one_row_with_the_newer_data(make_config, broker, db_url) -> None:
    node = FakeNode(broker.url, "shop-c", "node-3")
    try:
        async with running_central(make_config(), kafka=False):
            await node.send(1, UpKind.RESULTS, result_body("job-1", "shop-c", text="OLD"))
            await node.send(2, UpKind.RESULTS, result_body("job-1", "shop-c", text="NEW"))
            await node.wait_acked(2)
            rows = await query(db_url, "SELECT extracted_text, seq FROM ocr_processing_jobs")
            assert [tuple(r) for r in rows] == [("NEW", 2)]
    finally:
        node.close()

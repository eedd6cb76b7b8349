"""Classification of raw messages (pure): accepted, bare status, or rejected, and which rejects are acked past."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from central_sync.bodies import JobEvent, MetricsBody
from central_sync.inbound import Accepted, RawMessage, Rejected, StatusReport, classify
from shared_models.messages import MAX_MESSAGE_BYTES, SCHEMA_VERSION
from shared_models.topics import UpKind, up_topic
from tests.central_sync.harness import result_body

TOPIC = up_topic("shop-a", "node-1", UpKind.RESULTS)


def _env(seq: int = 1, kind: str = "results", body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION, "node_id": "node-1", "shop_id": "shop-a", "seq": seq, "kind": kind,
        "sent_at": datetime.now(UTC).isoformat(), "body": body if body is not None else result_body("j", "shop-a"),
    }
    return doc | extra


def _classify(doc: Any, topic: str = TOPIC) -> Any:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return classify(RawMessage(topic, payload))


def test_a_valid_result_is_accepted() -> None:
    item = _classify(_env())
    assert isinstance(item, Accepted) and isinstance(item.body, JobEvent)
    assert item.result is not None and item.result.text == "MILK 1L TK 85.00"


def test_nul_characters_are_removed_before_postgres_sees_them() -> None:
    item = _classify(_env(body=result_body("j", "shop-a", text="A\u0000B")))
    assert isinstance(item, Accepted) and item.result is not None and item.result.text == "AB"


def test_a_metrics_snapshot_is_flattened() -> None:
    doc = _env(kind="metrics", body={"total_requests": 5, "errors_by_type": {"TIMEOUT": 1}, "note": "x"})
    item = _classify(doc, up_topic("shop-a", "node-1", UpKind.METRICS))
    assert isinstance(item, Accepted) and isinstance(item.body, MetricsBody)
    assert [(p.model_name, p.metric_name, p.value) for p in item.body.metrics] == [
        ("node", "total_requests", 5.0), ("node", "errors_by_type.TIMEOUT", 1.0)
    ]


def test_the_nodes_metrics_snapshot_is_flattened() -> None:
    summary = {
        "total_requests": 12, "successful_requests": 10, "average_confidence": 0.91, "errors_by_type": {"TIMEOUT": 2},
        "by_model": {"ppocr": {"jobs": 9, "average_processing_time_ms": 40.5}},
    }
    body = {"node_id": "node-1", "shop_id": "shop-a", "timestamp": "2026-01-02T03:04:05+00:00", "summary": summary}
    item = _classify(_env(kind="metrics", body=body), up_topic("shop-a", "node-1", UpKind.METRICS))
    assert isinstance(item, Accepted) and isinstance(item.body, MetricsBody)
    assert [(p.model_name, p.metric_name, p.value) for p in item.body.metrics] == [
        ("node", "total_requests", 12.0), ("node", "successful_requests", 10.0), ("node", "average_confidence", 0.91),
        ("node", "errors_by_type.TIMEOUT", 2.0), ("ppocr", "jobs", 9.0), ("ppocr", "average_processing_time_ms", 40.5),
    ]
    assert item.body.timestamp is not None and item.body.timestamp.year == 2026


def test_a_bare_node_status_is_a_status_report() -> None:
    doc = {"node_id": "node-1", "shop_id": "shop-a", "state": "offline"}
    assert isinstance(_classify(doc, up_topic("shop-a", "node-1", UpKind.STATUS)), StatusReport)


@pytest.mark.parametrize(
    ("payload", "reason", "seq", "skip"),
    [
        (b"{oops", "malformed JSON", None, False),
        (b"[1, 2]", "malformed JSON: not an object", None, False),
        (_env(schema_version=0), "unknown schema_version 0", 1, True),
        (_env(schema_version=SCHEMA_VERSION + 1), f"unknown schema_version {SCHEMA_VERSION + 1}", 1, False),
        (_env(seq=0), "invalid envelope", None, False),
        (_env(seq=3, extra_field=1), "invalid envelope", 3, True),
        (_env(node_id="node-2"), "envelope shop-a/node-2 differs from topic shop-a/node-1", None, False),
        (_env(shop_id="shop-b"), "envelope shop-b/node-1 differs from topic shop-a/node-1", None, False),
        (_env(kind="metrics"), "kind metrics on a results topic", 1, True),
        (_env(body={"status": "completed"}), "invalid results body", 1, True),
        (_env(body=result_body("j", "shop-z")), "job of shop shop-z sent as shop shop-a", 1, True),
        (_env(body=result_body("j", "shop-a") | {"result": {"confidence": "high"}}), "invalid results body", 1, True),
    ],
)
def test_rejects_and_their_ack_policy(payload: Any, reason: str, seq: int | None, skip: bool) -> None:
    item = _classify(payload)
    assert isinstance(item, Rejected)
    assert item.reason.startswith(reason)
    assert (item.seq, item.skip) == (seq, skip)


def test_a_newer_schema_keeps_its_identity_but_is_not_skipped() -> None:
    item = _classify(_env(seq=7, schema_version=SCHEMA_VERSION + 1))
    assert isinstance(item, Rejected) and item.seq == 7 and not item.skip


def test_oversized_messages_are_skipped_only_when_their_identity_is_readable() -> None:
    big = _env(seq=9, body=result_body("j", "shop-a", text="x" * MAX_MESSAGE_BYTES))
    item = _classify(big)
    assert isinstance(item, Rejected) and item.reason.startswith("oversized") and (item.seq, item.skip) == (9, True)
    garbage = _classify(b"x" * (MAX_MESSAGE_BYTES + 1))
    assert isinstance(garbage, Rejected) and garbage.seq is None and not garbage.skip


def test_not_an_upstream_topic() -> None:
    item = _classify(_env(), "zakpos/v1/shop-a/node-1/up/unknown")
    assert isinstance(item, Rejected) and item.reason == "not an upstream topic"

"""What nodes send about model updates, through the real ingest (Mosquitto, PostgreSQL): a node-level error
(shared_models.model_updates.NodeErrorLog in an `errors` envelope) lands in ocr_error_logs with no job, a broken
one is a skipped reject, and shadow agreement points land in ocr_model_metrics as the registry reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared_models.model_updates import MODEL_UPDATE_FAILED, SHADOW_AGREEMENT_METRIC, SHADOW_LINES_METRIC, NodeErrorLog
from shared_models.topics import UpKind
from tests.central_sync.harness import FakeNode, query, running_central, scalar

pytestmark = pytest.mark.integration


async def test_node_errors_and_shadow_metrics_are_stored(make_config, broker, db_url) -> None:
    config = make_config()
    config.kafka.enabled = False
    node = FakeNode(broker.url, "shop-a", "node-1")
    at = datetime.now(UTC)
    error = NodeErrorLog(code=MODEL_UPDATE_FAILED, message="self-test failed: read 'MILK 46' for 'MILK 45'",
                         model="tiny-trocr@0.2.0", at=at)
    try:
        async with running_central(config, kafka=False):
            await node.send(1, UpKind.ERRORS, error.model_dump(mode="json"))
            await node.send(2, UpKind.ERRORS, {"log_kind": "node_error", "message": "no code", "at": at.isoformat()})
            await node.send(3, UpKind.METRICS, {"metrics": [
                {"model_name": "tiny-trocr@0.2.0", "metric_name": SHADOW_AGREEMENT_METRIC, "value": 0.93,
                 "recorded_at": at.isoformat()},
                {"model_name": "tiny-trocr@0.2.0", "metric_name": SHADOW_LINES_METRIC, "value": 120,
                 "recorded_at": at.isoformat()},
            ]})
            await node.wait_acked(3)
    finally:
        node.close()
    rows = await query(db_url, "SELECT node_id, shop_id, job_id, code, message, model_name, created_at "
                               "FROM ocr_error_logs")
    assert [dict(r) for r in rows] == [{
        "node_id": "node-1", "shop_id": "shop-a", "job_id": None, "code": MODEL_UPDATE_FAILED,
        "message": error.message, "model_name": "tiny-trocr@0.2.0", "created_at": at,
    }]
    assert await scalar(db_url, "SELECT count(*) FROM ocr_processing_jobs") == 0, "a node error is not a job"
    reject = await query(db_url, "SELECT seq, skipped, reason FROM rejects")
    assert [(r["seq"], r["skipped"]) for r in reject] == [(2, True)] and "code" in reject[0]["reason"]
    metrics = await query(db_url, "SELECT model_name, metric_name, value, recorded_at FROM ocr_model_metrics "
                                  "ORDER BY metric_name")
    assert [(m["model_name"], m["metric_name"], m["value"], m["recorded_at"]) for m in metrics] == [
        ("tiny-trocr@0.2.0", SHADOW_AGREEMENT_METRIC, 0.93, at),
        ("tiny-trocr@0.2.0", SHADOW_LINES_METRIC, 120.0, at),
    ]

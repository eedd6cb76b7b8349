"""Row builders: accepted envelopes -> rows of ocr_processing_jobs, ocr_error_logs, ocr_model_metrics,
kafka_outbox and the nodes status columns. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from central_sync.bodies import JobEvent, MetricsBody, StatusBody
from central_sync.inbound import Accepted, Rejected, StatusReport
from shared_models.model_updates import NodeErrorLog
from shared_models.topics import UpKind

#: Kafka outbox kinds -> topic names come from the config; these are the kinds.
COMPLETED, FAILED, METRICS = "completed", "failed", "metrics"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def job_row(item: Accepted) -> dict[str, Any]:
    """The ocr_processing_jobs row of a results/errors envelope."""
    event = item.body
    assert isinstance(event, JobEvent)
    env = item.envelope
    fields = item.result
    return {
        "node_id": env.node_id,
        "shop_id": env.shop_id,
        "job_id": event.job_id,
        "seq": env.seq,
        "user_id": event.user_id,
        "document_type": event.document_type,
        "status": event.status,
        "extracted_text": fields.text if fields else None,
        "structured_data": fields.structured if fields else None,
        "barcodes": fields.barcodes if fields else None,
        "result": event.result,
        "confidence_score": fields.confidence if fields else None,
        "processing_time_ms": fields.processing_time_ms if fields else None,
        "model_used": fields.model_used if fields else None,
        "error_code": event.error.code if event.error else None,
        "error_message": event.error.message if event.error else None,
        "attempts": event.attempts,
        "created_at": event.created_at,
        "completed_at": event.completed_at,
        "event_at": event.timestamp or env.sent_at,
    }


def job_sort_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """Rows are written in (shop, barcode) order: the product trigger then locks products in one global order."""
    structured = row["structured_data"]
    barcode = structured.get("barcode") if isinstance(structured, dict) else None
    return row["shop_id"], str(barcode or ""), row["node_id"], row["job_id"]


def job_outbox(item: Accepted) -> tuple[str, str, dict[str, Any]]:
    """(kind, key, value) of a job event for Kafka: the node's event plus node_id (the seed's event shape)."""
    env = item.envelope
    event = item.body
    assert isinstance(event, JobEvent)
    value = dict(env.body)
    value.update(job_id=event.job_id, shop_id=env.shop_id, node_id=env.node_id, seq=env.seq)
    value.setdefault("timestamp", _iso(event.timestamp or env.sent_at))
    kind = COMPLETED if env.kind is UpKind.RESULTS else FAILED
    return kind, event.job_id, value


def error_row(item: Accepted) -> dict[str, Any] | None:
    """The ocr_error_logs row of an errors envelope (None when it carries no error)."""
    event = item.body
    assert isinstance(event, JobEvent)
    if item.envelope.kind is not UpKind.ERRORS or event.error is None:
        return None
    return {
        "node_id": item.envelope.node_id,
        "shop_id": item.envelope.shop_id,
        "job_id": event.job_id,
        "code": event.error.code,
        "message": event.error.message,
        "model_name": None,
        "attempt": event.attempts,
        "created_at": event.timestamp or item.envelope.sent_at,
    }


def node_error_row(item: Accepted) -> dict[str, Any]:
    """The ocr_error_logs row of a node-level error (no job): its code, message and the model it is about."""
    body = item.body
    assert isinstance(body, NodeErrorLog)
    return {
        "node_id": item.envelope.node_id,
        "shop_id": item.envelope.shop_id,
        "job_id": None,
        "code": body.code,
        "message": body.message,
        "model_name": body.model,
        "attempt": 0,
        "created_at": body.at,
    }


def metric_rows(item: Accepted) -> list[dict[str, Any]]:
    """The ocr_model_metrics rows of a metrics envelope."""
    body = item.body
    assert isinstance(body, MetricsBody)
    env = item.envelope
    default_at = body.timestamp or env.sent_at
    return [
        {
            "node_id": env.node_id,
            "shop_id": env.shop_id,
            "model_name": point.model_name,
            "metric_name": point.metric_name,
            "value": point.value,
            "job_id": point.job_id,
            "recorded_at": point.recorded_at or default_at,
        }
        for point in body.metrics
    ]


def metrics_outbox(item: Accepted) -> tuple[str, str, dict[str, Any]]:
    """(kind, key, value) of a metrics envelope for Kafka; keyed by node."""
    body = item.body
    assert isinstance(body, MetricsBody)
    env = item.envelope
    value = {
        "node_id": env.node_id,
        "shop_id": env.shop_id,
        "seq": env.seq,
        "metrics": [point.model_dump(mode="json", exclude_none=True) for point in body.metrics],
        "timestamp": _iso(body.timestamp or env.sent_at),
    }
    return METRICS, env.node_id, value


def status_row(item: Accepted | StatusReport) -> dict[str, Any]:
    """Bind values for the nodes status update (b_at: the report's time; older reports than the stored lose)."""
    if isinstance(item, StatusReport):
        status = item.status
        at = status.at or datetime.now(UTC)
        body = StatusBody(
            state=status.state, version=status.version, model_versions=status.model_versions,
            backlog=status.backlog, at=at,
        )
        node_id = status.node_id
    else:
        assert isinstance(item.body, StatusBody)
        body = item.body
        at = body.at or item.envelope.sent_at
        node_id = item.envelope.node_id
    return {
        "b_node": node_id,
        "b_status": body.state,
        "b_at": at,
        "b_version": body.version,
        "b_model_version": body.model_summary(),
        "b_model_versions": body.model_versions or None,
        "b_backlog": body.backlog,
    }


def reject_row(item: Rejected, *, skipped: bool) -> dict[str, Any]:
    """The rejects row of a refused message."""
    return {
        "topic": item.raw.topic.replace("\x00", "\ufffd"),
        "reason": item.reason.replace("\x00", "\ufffd"),
        "node_id": item.node_id,
        "shop_id": item.shop_id,
        "seq": item.seq,
        "skipped": skipped,
        "payload_excerpt": item.excerpt,
        "payload_bytes": len(item.raw.payload),
    }

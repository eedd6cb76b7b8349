"""GET /api/v1/metrics: the seed's JSON document, or Prometheus text for `Accept: text/plain`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.store import jobs as job_store
from edge_node.store import metrics as metric_store

PROMETHEUS_CONTENT_TYPE = "text/plain"


async def _collect(request: web.Request) -> dict[str, Any]:
    db = request.app[keys.DATABASE]
    document = await db.run(metric_store.summary)
    document["queue"] = await db.run(job_store.queue_counts)
    # Accuracy needs ground truth: clerks' corrections (POST /ocr/jobs/{id}/corrections); None before the first.
    document["model_accuracy"] = await db.run(metric_store.accuracy)
    return document


async def metrics(request: web.Request) -> web.Response:
    """JSON by default; Prometheus exposition when the client prefers text/plain."""
    document = await _collect(request)
    accept = request.headers.get("Accept", "")
    if PROMETHEUS_CONTENT_TYPE in accept and "application/json" not in accept:
        return web.Response(text=to_prometheus(document), content_type=PROMETHEUS_CONTENT_TYPE)
    return ok(document)


async def metrics_prometheus(request: web.Request) -> web.Response:
    """GET /api/v1/metrics/prometheus."""
    return web.Response(text=to_prometheus(await _collect(request)), content_type=PROMETHEUS_CONTENT_TYPE)


def to_prometheus(document: dict[str, Any]) -> str:
    """Render the metrics document in the Prometheus text format."""
    lines = [
        "# HELP zakpos_ocr_requests_total OCR requests received, by outcome.",
        "# TYPE zakpos_ocr_requests_total counter",
        f'zakpos_ocr_requests_total{{outcome="success"}} {document["successful_requests"]}',
        f'zakpos_ocr_requests_total{{outcome="failure"}} {document["failed_requests"]}',
        f'zakpos_ocr_requests_total{{outcome="any"}} {document["total_requests"]}',
        "# HELP zakpos_ocr_processing_time_ms_avg Mean processing time of completed jobs (not cache hits).",
        "# TYPE zakpos_ocr_processing_time_ms_avg gauge",
        f"zakpos_ocr_processing_time_ms_avg {document['average_processing_time_ms']}",
        "# HELP zakpos_ocr_errors_total Failed jobs by error code.",
        "# TYPE zakpos_ocr_errors_total counter",
    ]
    lines += [f'zakpos_ocr_errors_total{{code="{code}"}} {n}' for code, n in sorted(document["errors_by_type"].items())]
    lines += ["# HELP zakpos_ocr_jobs Jobs by status.", "# TYPE zakpos_ocr_jobs gauge"]
    lines += [f'zakpos_ocr_jobs{{status="{status}"}} {n}' for status, n in sorted(document["queue"].items())]
    lines += _accuracy_lines(document.get("model_accuracy") or {})
    return "\n".join(lines) + "\n"


def _accuracy_lines(accuracy: dict[str, Any]) -> list[str]:
    """Accuracy from corrections; the gauges have no sample until the first correction (unknown, not 0)."""
    lines = [
        "# HELP zakpos_ocr_accuracy Share (0-1) of corrected fields the node had right, over all corrections.",
        "# TYPE zakpos_ocr_accuracy gauge",
    ]
    if accuracy.get("overall") is not None:
        lines.append(f"zakpos_ocr_accuracy {accuracy['overall']}")
    lines += [
        "# HELP zakpos_ocr_field_accuracy Share (0-1) of corrections of one field that the node had right.",
        "# TYPE zakpos_ocr_field_accuracy gauge",
    ]
    lines += [f'zakpos_ocr_field_accuracy{{field="{name}"}} {value}'
              for name, value in sorted(accuracy.get("by_field", {}).items())]
    lines += [
        "# HELP zakpos_ocr_corrections Jobs whose fields a clerk corrected.",
        "# TYPE zakpos_ocr_corrections gauge",
        f"zakpos_ocr_corrections {accuracy.get('corrections', 0)}",
    ]
    return lines

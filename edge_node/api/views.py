"""How jobs and results look in API responses."""

from __future__ import annotations

from typing import Any

from edge_node.store.jobs import JobRecord


def result_view(job: JobRecord) -> dict[str, Any]:
    """The seed's OCR response data for a completed job, plus lines/words and the job's identity."""
    result = dict(job.result or {})
    words = [word for line in result.get("lines", []) for word in line.get("words", [])]
    return {
        "id": job.id,
        "job_id": job.id,
        "status": job.status.value,
        "text": result.get("text", ""),
        "confidence": result.get("confidence", 0.0),
        "structured": result.get("structured", {}),
        "barcodes": result.get("barcodes", []),
        "processing_time_ms": result.get("processing_time_ms", job.processing_time_ms),
        "model_used": result.get("model_used", job.model_used),
        "lines": result.get("lines", []),
        "words": words,
        "stage_times_ms": result.get("stage_times_ms", {}),
        "image": {"width": result.get("image_width"), "height": result.get("image_height")},
        "cached": job.cached,
    }


def job_view(job: JobRecord) -> dict[str, Any]:
    """A job's state; the result when it completed, the error when it failed."""
    view: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status.value,
        "type": job.document_type,
        "options": job.options,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "progress_percentage": 100 if job.status.is_final else 0,
    }
    if job.result is not None:
        view["result"] = result_view(job)
    if job.error_code is not None:
        view["error"] = {"code": job.error_code, "message": job.error_message}
    return view

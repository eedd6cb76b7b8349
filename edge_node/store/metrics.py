"""Aggregates for /metrics, computed from the job and error tables."""

from __future__ import annotations

import sqlite3
from typing import Any

from shared_models.jobs import JobStatus


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """The seed's metrics document: request counts, mean processing time, errors by type."""
    row = conn.execute(
        "SELECT COUNT(*) AS total,"
        " SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) AS ok,"
        " SUM(CASE WHEN status IN (?, ?) THEN 1 ELSE 0 END) AS failed,"
        " AVG(CASE WHEN status = ? AND cached = 0 THEN processing_time_ms END) AS avg_ms,"
        " AVG(CASE WHEN status = ? THEN confidence_score END) AS avg_conf,"
        " SUM(cached) AS cached"
        " FROM ocr_processing_jobs",
        (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.DEAD.value, JobStatus.COMPLETED.value,
         JobStatus.COMPLETED.value),
    ).fetchone()
    errors = {
        r["error_code"]: r["n"]
        for r in conn.execute(
            "SELECT error_code, COUNT(*) AS n FROM ocr_processing_jobs WHERE status IN (?, ?) GROUP BY error_code",
            (JobStatus.FAILED.value, JobStatus.DEAD.value),
        )
    }
    by_model = {
        r["model_used"]: {"jobs": r["n"], "average_processing_time_ms": round(r["avg_ms"] or 0.0, 2)}
        for r in conn.execute(
            "SELECT model_used, COUNT(*) AS n, AVG(processing_time_ms) AS avg_ms FROM ocr_processing_jobs"
            " WHERE status = ? GROUP BY model_used",
            (JobStatus.COMPLETED.value,),
        )
    }
    return {
        "total_requests": row["total"] or 0,
        "successful_requests": row["ok"] or 0,
        "failed_requests": row["failed"] or 0,
        "cached_requests": row["cached"] or 0,
        "average_processing_time_ms": round(row["avg_ms"] or 0.0, 2),
        "average_confidence": round(row["avg_conf"] or 0.0, 4),
        "errors_by_type": errors,
        "by_model": by_model,
    }


def accuracy(conn: sqlite3.Connection) -> dict[str, Any]:
    """`model_accuracy` from clerks' corrections: a field counts as right when the clerk kept what the node returned.

    `overall` is right fields / compared fields over every corrected job (None before the first correction),
    `by_field` the same per field, `corrections` the number of corrected jobs.
    """
    by_field: dict[str, float] = {}
    right = checked = 0
    for row in conn.execute(
        "SELECT field, SUM(correct) AS right, COUNT(*) AS n FROM ocr_correction_fields GROUP BY field ORDER BY field"
    ):
        by_field[row["field"]] = round(row["right"] / row["n"], 4)
        right += row["right"]
        checked += row["n"]
    corrections = int(conn.execute("SELECT COUNT(*) FROM ocr_corrections").fetchone()[0])
    return {
        "overall": round(right / checked, 4) if checked else None,
        "by_field": by_field,
        "corrections": corrections,
    }

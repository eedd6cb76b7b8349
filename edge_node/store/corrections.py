"""Clerks' corrections of a job's structured fields: the node's ground truth.

A correction stores, per field the clerk sent, what the node returned, what the clerk says is right, and whether
they agree. In the same transaction it queues an outbox row of kind `metrics` whose body is in the explicit
`{"metrics": [points]}` form that central stores as `ocr_model_metrics` rows (see central_sync/bodies.py):
`correction.accuracy` (share of the job's compared fields that were right) and `correction.field.<name>` (1 or 0)
per field, all keyed by the job id and the model that produced the result. Correcting a job again replaces its
earlier correction here (central keeps the latest per job by `recorded_at`).

Every function takes the connection first and runs on the database thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge_node.store.db import transaction, utc_now
from edge_node.store.jobs import JobRecord
from edge_node.store.outbox import METRICS_KIND, append
from shared_models.ocr import StructuredFields

#: Fields a clerk may correct: every structured field but the per-field confidences (the node's, not a label).
CORRECTABLE_FIELDS: tuple[str, ...] = tuple(name for name in StructuredFields.model_fields if name != "confidence")
#: Metric names of the outbox points (central's dashboard reads exactly these).
ACCURACY_METRIC = "correction.accuracy"
FIELD_METRIC_PREFIX = "correction.field."
#: Model name used when the job's result does not say which engine produced it.
UNKNOWN_MODEL = "unknown"
#: Two numbers closer than this are the same value (a price typed as 12 equals the 12.0 the node returned).
NUMBER_TOLERANCE = 1e-6


def _normalise(value: Any) -> Any:
    """A comparable form: empty strings are missing, text ignores case and runs of spaces, numbers are floats.

    Strings are never parsed as numbers: a barcode "0123" is not the barcode "123". Both sides already have the
    field's type (the result from the pipeline, the correction validated against StructuredFields).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return " ".join(value.split()).casefold() or None
    if isinstance(value, list):
        return [_normalise(item) for item in value] or None
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in sorted(value.items())}
    return value


def same_value(returned: Any, corrected: Any) -> bool:
    """True when the corrected value equals what the node returned (after `_normalise`)."""
    left, right = _normalise(returned), _normalise(corrected)
    if isinstance(left, float) and isinstance(right, float):
        return abs(left - right) <= NUMBER_TOLERANCE
    return bool(left == right)


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """One compared field."""

    field: str
    returned: Any
    corrected: Any
    correct: bool


@dataclass(frozen=True, slots=True)
class Correction:
    """A job's stored correction."""

    job_id: str
    user_id: str
    model_used: str
    fields: dict[str, Any]
    checks: list[FieldCheck]
    updated_at: str

    @property
    def accuracy(self) -> float | None:
        """Share of compared fields the node got right; None when nothing could be compared."""
        if not self.checks:
            return None
        return sum(check.correct for check in self.checks) / len(self.checks)


def compare(job: JobRecord, fields: dict[str, Any]) -> list[FieldCheck]:
    """Check each sent field against the job's result. A field missing on both sides says nothing: skipped."""
    structured = (job.result or {}).get("structured") or {}
    checks = []
    for name, corrected in fields.items():
        returned = structured.get(name)
        if _normalise(returned) is None and _normalise(corrected) is None:
            continue
        checks.append(FieldCheck(name, returned, corrected, same_value(returned, corrected)))
    return checks


def metrics_body(correction: Correction, shop_id: str) -> dict[str, Any]:
    """The outbox body: explicit metric points central writes to ocr_model_metrics, plus the correction itself."""
    accuracy = correction.accuracy
    common = {"model_name": correction.model_used, "job_id": correction.job_id, "recorded_at": correction.updated_at}
    points: list[dict[str, Any]] = []
    if accuracy is not None:
        points.append({**common, "metric_name": ACCURACY_METRIC, "value": accuracy})
    points += [
        {**common, "metric_name": FIELD_METRIC_PREFIX + check.field, "value": 1.0 if check.correct else 0.0}
        for check in correction.checks
    ]
    return {
        "source": "correction",
        "shop_id": shop_id,
        "job_id": correction.job_id,
        "timestamp": correction.updated_at,
        "metrics": points,
        "fields": correction.fields,
    }


def save(conn: sqlite3.Connection, job: JobRecord, user_id: str, fields: dict[str, Any]) -> Correction:
    """Store (or replace) the job's correction and queue its metrics outbox row, in one transaction."""
    now = utc_now()
    checks = compare(job, fields)
    model = (job.result or {}).get("model_used") or job.model_used or UNKNOWN_MODEL
    correction = Correction(job.id, user_id, str(model), fields, checks, now)
    with transaction(conn):
        conn.execute(
            "INSERT INTO ocr_corrections (job_id, shop_id, user_id, model_used, fields, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (job_id) DO UPDATE SET user_id = excluded.user_id, fields = excluded.fields,"
            " model_used = excluded.model_used, updated_at = excluded.updated_at",
            (job.id, job.shop_id, user_id, correction.model_used, json.dumps(fields), now, now),
        )
        conn.execute("DELETE FROM ocr_correction_fields WHERE job_id = ?", (job.id,))
        conn.executemany(
            "INSERT INTO ocr_correction_fields (job_id, field, returned, corrected, correct) VALUES (?, ?, ?, ?, ?)",
            [(job.id, c.field, json.dumps(c.returned), json.dumps(c.corrected), int(c.correct)) for c in checks],
        )
        if checks:
            append(conn, METRICS_KIND, metrics_body(correction, job.shop_id))
    return correction


@dataclass(frozen=True, slots=True)
class ExportItem:
    """A corrected job whose image is still stored: what the labelled export writes for it."""

    job: JobRecord
    fields: dict[str, Any]
    user_id: str
    updated_at: str


def exportable(conn: sqlite3.Connection, shop_id: str, after: str = "", limit: int = 100) -> list[ExportItem]:
    """Corrected jobs of the shop with a stored image, in (updated_at, job_id) order after the cursor `after`.

    `after` is `updated_at|job_id` of the last item of the previous page ("" for the first page).
    """
    at, _, job_id = after.partition("|")
    rows = conn.execute(
        "SELECT c.fields, c.user_id AS corrected_by, c.updated_at AS corrected_at, j.*"
        " FROM ocr_corrections c JOIN images i ON i.job_id = c.job_id"
        " JOIN ocr_processing_jobs j ON j.id = c.job_id"
        " WHERE c.shop_id = ? AND (c.updated_at, c.job_id) > (?, ?)"
        " ORDER BY c.updated_at, c.job_id LIMIT ?",
        (shop_id, at, job_id, limit),
    ).fetchall()
    return [
        ExportItem(JobRecord.from_row(row), json.loads(row["fields"]), row["corrected_by"], row["corrected_at"])
        for row in rows
    ]


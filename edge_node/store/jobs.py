"""The job queue and job records: insert, claim with a lease, complete or fail, re-queue dead leases.

Every function takes the connection first and runs on the database thread (see `db.Database.run`).
A job's final write (status, result, metrics, outbox row) is ONE transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from edge_node.store import cache as result_cache
from edge_node.store.db import transaction, utc_now
from shared_models.jobs import JobStatus


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the API knows about a job when it accepts the upload."""

    shop_id: str
    user_id: str
    document_type: str
    options: dict[str, Any]
    image_hash: str | None
    image_size_bytes: int | None
    idempotency_key: str | None = None
    max_attempts: int = 4


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of `ocr_processing_jobs`, JSON columns decoded."""

    id: str
    shop_id: str
    user_id: str
    document_type: str
    options: dict[str, Any]
    status: JobStatus
    image_hash: str | None
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    processing_time_ms: float | None
    model_used: str | None
    cached: bool
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    idempotency_key: str | None

    @classmethod
    def from_row(
        cls, row: sqlite3.Row, options: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> JobRecord:
        """The record of a row; `options`/`result` given by a caller that just wrote them skip decoding."""
        return cls(
            id=row["id"],
            shop_id=row["shop_id"],
            user_id=row["user_id"],
            document_type=row["document_type"],
            options=options if options is not None else json.loads(row["options"]),
            status=JobStatus(row["status"]),
            image_hash=row["image_hash"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            result=result if result is not None else json.loads(row["result"]) if row["result"] else None,
            error_code=row["error_code"],
            error_message=row["error_message"],
            processing_time_ms=row["processing_time_ms"],
            model_used=row["model_used"],
            cached=bool(row["cached"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            idempotency_key=row["idempotency_key"],
        )


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Why an attempt failed, and what happens next."""

    code: str
    message: str
    details: dict[str, Any] | None = None
    retry_at: float | None = None  # set: back to `queued` at that time; unset: final
    exhausted: bool = False  # final after retries of a retriable error: the job is `dead`, not `failed`


def new_job_id() -> str:
    """Job ids are random UUIDs: unguessable across shops."""
    return str(uuid.uuid4())


def insert_job(
    conn: sqlite3.Connection, job: NewJob, job_id: str, lease_seconds: float | None = None
) -> tuple[JobRecord, bool]:
    """Queue a job; with an idempotency key already used by this user, return that job instead.

    With `lease_seconds` the job is inserted already claimed (`processing`, attempt 1, lease set), as
    `claim_next` would leave it: for a worker that takes it straight from the caller. A crash then re-queues
    it like any claimed job (`requeue_processing` at start-up, `requeue_expired_leases` while running).
    Returns (job, created).
    """
    with transaction(conn):
        if job.idempotency_key is not None:
            row = conn.execute(
                "SELECT * FROM ocr_processing_jobs WHERE shop_id = ? AND user_id = ? AND idempotency_key = ?",
                (job.shop_id, job.user_id, job.idempotency_key),
            ).fetchone()
            if row is not None:
                return JobRecord.from_row(row), False
        now = utc_now()
        claimed = lease_seconds is not None
        row = conn.execute(
            "INSERT INTO ocr_processing_jobs (id, shop_id, user_id, document_type, options, status, image_hash,"
            " image_size_bytes, idempotency_key, attempts, max_attempts, lease_expires_at, available_at,"
            " started_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                job_id, job.shop_id, job.user_id, job.document_type, json.dumps(job.options),
                (JobStatus.PROCESSING if claimed else JobStatus.QUEUED).value, job.image_hash,
                job.image_size_bytes, job.idempotency_key, 1 if claimed else 0, job.max_attempts,
                time.time() + lease_seconds if lease_seconds is not None else None, 0.0,
                now if claimed else None, now, now,
            ),
        ).fetchone()
    return JobRecord.from_row(row, options=job.options), True


def insert_rejected(
    conn: sqlite3.Connection, job: NewJob, failure: JobFailure, negative_cache_ttl: float | None = None
) -> JobRecord:
    """Record a request refused before it was queued (bad image, bad options) as a failed job."""
    job_id = new_job_id()
    now = utc_now()
    with transaction(conn):
        conn.execute(
            "INSERT INTO ocr_processing_jobs (id, shop_id, user_id, document_type, options, status, image_hash,"
            " image_size_bytes, error_code, error_message, created_at, updated_at, completed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id, job.shop_id, job.user_id, job.document_type, json.dumps(job.options),
                JobStatus.FAILED.value, job.image_hash, job.image_size_bytes, failure.code, failure.message,
                now, now, now,
            ),
        )
        _log_error(conn, job_id, failure, attempt=0)
        record = _get(conn, job_id)
        _outbox(conn, "errors", _event(record))
        if negative_cache_ttl is not None and failure.code == "INVALID_IMAGE" and job.image_hash is not None:
            key = result_cache.cache_key(job.image_hash, job.options)
            result_cache.store_negative(conn, key, failure.message, negative_cache_ttl)
    return record


def claim_next(conn: sqlite3.Connection, lease_seconds: float) -> JobRecord | None:
    """Atomically take the oldest runnable job: `queued -> processing`, attempts + 1, lease set."""
    now = time.time()
    row = conn.execute(
        "UPDATE ocr_processing_jobs SET status = ?, attempts = attempts + 1, lease_expires_at = ?,"
        " started_at = ?, updated_at = ?"
        " WHERE id = (SELECT id FROM ocr_processing_jobs WHERE status = ? AND available_at <= ?"
        "             ORDER BY available_at, created_at LIMIT 1)"
        " RETURNING *",
        (JobStatus.PROCESSING.value, now + lease_seconds, utc_now(), utc_now(), JobStatus.QUEUED.value, now),
    ).fetchone()
    return JobRecord.from_row(row) if row is not None else None


def complete_job(
    conn: sqlite3.Connection,
    job_id: str,
    result: dict[str, Any],
    metrics: list[tuple[str, str, float]],
    cache_ttl: float | None = None,
) -> JobRecord | None:
    """Store the result, final status, metrics, the outbox row (and the cache entry) in one transaction.

    Returns None when the job is no longer ours (its lease expired and another attempt finished it).
    """
    now = utc_now()
    with transaction(conn):
        row = conn.execute(
            "UPDATE ocr_processing_jobs SET status = ?, result = ?, extracted_text = ?, structured_data = ?,"
            " barcodes = ?, confidence_score = ?, processing_time_ms = ?, model_used = ?, error_code = NULL,"
            " error_message = NULL, lease_expires_at = NULL, completed_at = ?, updated_at = ?"
            " WHERE id = ? AND status = ? RETURNING *",
            (
                JobStatus.COMPLETED.value, json.dumps(result), result.get("text"),
                json.dumps(result.get("structured")), json.dumps(result.get("barcodes")), result.get("confidence"),
                result.get("processing_time_ms"), result.get("model_used"), now, now, job_id,
                JobStatus.PROCESSING.value,
            ),
        ).fetchone()
        if row is None:
            return None
        job = JobRecord.from_row(row, result=result)
        conn.executemany(
            "INSERT INTO ocr_model_metrics (model_name, metric_name, value, job_id, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(model, name, value, job_id, now) for model, name, value in metrics],
        )
        _outbox(conn, "results", _event(job))
        if cache_ttl is not None and job.image_hash is not None:
            result_cache.store(conn, result_cache.cache_key(job.image_hash, job.options), result, cache_ttl)
    return job


def insert_cached(conn: sqlite3.Connection, job: NewJob, result: dict[str, Any]) -> JobRecord:
    """A request answered from the cache is still a job row (marked cached) and still synced."""
    job_id = new_job_id()
    now = utc_now()
    with transaction(conn):
        conn.execute(
            "INSERT INTO ocr_processing_jobs (id, shop_id, user_id, document_type, options, status, image_hash,"
            " image_size_bytes, idempotency_key, result, extracted_text, structured_data, barcodes,"
            " confidence_score, processing_time_ms, model_used, cached, created_at, updated_at, completed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                job_id, job.shop_id, job.user_id, job.document_type, json.dumps(job.options),
                JobStatus.COMPLETED.value, job.image_hash, job.image_size_bytes, job.idempotency_key,
                json.dumps(result), result.get("text"), json.dumps(result.get("structured")),
                json.dumps(result.get("barcodes")), result.get("confidence"), 0.0, result.get("model_used"),
                now, now, now,
            ),
        )
        record = _get(conn, job_id)
        _outbox(conn, "results", _event(record))
    return record


def fail_job(
    conn: sqlite3.Connection, job_id: str, failure: JobFailure, negative_cache_ttl: float | None = None
) -> JobRecord | None:
    """Log the failure; re-queue for `retry_at`, or end the job (`failed`, or `dead` after retries).

    An INVALID_IMAGE ending is also remembered in the cache for `negative_cache_ttl` seconds.
    """
    now = utc_now()
    with transaction(conn):
        row = conn.execute(
            "SELECT attempts, status FROM ocr_processing_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None or row["status"] != JobStatus.PROCESSING.value:
            return None
        _log_error(conn, job_id, failure, attempt=row["attempts"])
        if failure.retry_at is not None:
            conn.execute(
                "UPDATE ocr_processing_jobs SET status = ?, available_at = ?, lease_expires_at = NULL,"
                " error_code = ?, error_message = ?, updated_at = ? WHERE id = ?",
                (JobStatus.QUEUED.value, failure.retry_at, failure.code, failure.message, now, job_id),
            )
            return _get(conn, job_id)
        status = JobStatus.DEAD if failure.exhausted else JobStatus.FAILED
        conn.execute(
            "UPDATE ocr_processing_jobs SET status = ?, lease_expires_at = NULL, error_code = ?, error_message = ?,"
            " completed_at = ?, updated_at = ? WHERE id = ?",
            (status.value, failure.code, failure.message, now, now, job_id),
        )
        job = _get(conn, job_id)
        _outbox(conn, "errors", _event(job))
        if negative_cache_ttl is not None and failure.code == "INVALID_IMAGE" and job.image_hash is not None:
            key = result_cache.cache_key(job.image_hash, job.options)
            result_cache.store_negative(conn, key, failure.message, negative_cache_ttl)
    return job


def requeue_expired_leases(conn: sqlite3.Connection) -> int:
    """Jobs whose worker died (lease past) go back to `queued`; returns how many."""
    return conn.execute(
        "UPDATE ocr_processing_jobs SET status = ?, lease_expires_at = NULL, updated_at = ?"
        " WHERE status = ? AND lease_expires_at < ?",
        (JobStatus.QUEUED.value, utc_now(), JobStatus.PROCESSING.value, time.time()),
    ).rowcount


def requeue_processing(conn: sqlite3.Connection) -> int:
    """At start-up nothing of ours is running: every `processing` job goes back to the queue."""
    return conn.execute(
        "UPDATE ocr_processing_jobs SET status = ?, lease_expires_at = NULL, updated_at = ? WHERE status = ?",
        (JobStatus.QUEUED.value, utc_now(), JobStatus.PROCESSING.value),
    ).rowcount


def get_job(conn: sqlite3.Connection, job_id: str, shop_id: str) -> JobRecord | None:
    """A job of this shop, or None (another shop's job does not exist for the caller)."""
    row = conn.execute(
        "SELECT * FROM ocr_processing_jobs WHERE id = ? AND shop_id = ?", (job_id, shop_id)
    ).fetchone()
    return JobRecord.from_row(row) if row is not None else None


def get_job_any(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    """A job by id, whatever its shop (internal use only)."""
    row = conn.execute("SELECT * FROM ocr_processing_jobs WHERE id = ?", (job_id,)).fetchone()
    return JobRecord.from_row(row) if row is not None else None


def list_jobs(conn: sqlite3.Connection, shop_id: str, status: str | None, limit: int) -> list[JobRecord]:
    """The shop's most recent jobs, optionally of one status."""
    if status is None:
        rows = conn.execute(
            "SELECT * FROM ocr_processing_jobs WHERE shop_id = ? ORDER BY created_at DESC LIMIT ?", (shop_id, limit)
        )
    else:
        rows = conn.execute(
            "SELECT * FROM ocr_processing_jobs WHERE shop_id = ? AND status = ? ORDER BY created_at DESC LIMIT ?",
            (shop_id, status, limit),
        )
    return [JobRecord.from_row(row) for row in rows]


def retry_dead(conn: sqlite3.Connection, job_id: str, shop_id: str, max_attempts: int) -> JobRecord | None:
    """Put a dead job back in the queue with a fresh retry budget; None if it is not dead."""
    now = utc_now()
    with transaction(conn):
        updated = conn.execute(
            "UPDATE ocr_processing_jobs SET status = ?, attempts = 0, max_attempts = ?, available_at = 0,"
            " error_code = NULL, error_message = NULL, completed_at = NULL, updated_at = ?"
            " WHERE id = ? AND shop_id = ? AND status = ?",
            (JobStatus.QUEUED.value, max_attempts, now, job_id, shop_id, JobStatus.DEAD.value),
        ).rowcount
        return _get(conn, job_id) if updated else None


@dataclass(frozen=True, slots=True)
class DeletedJob:
    """What `delete_job` found: the job as it was (None: no such job of the shop) and whether it was removed."""

    job: JobRecord | None
    deleted: bool
    redacted_outbox_rows: int = 0


def delete_job(conn: sqlite3.Connection, job_id: str, shop_id: str) -> DeletedJob:
    """Remove a finished job of the shop with its error log, corrections and cache entry, in one transaction.

    A queued or processing job is left alone (`deleted` False): its worker would otherwise still write it.
    Outbox rows of the job not yet acknowledged by central keep their seq (central acks contiguous seqs, so a
    deleted row would stall the sync) but lose their content: they become a `deleted` event, so that neither
    a resend nor a later publish brings the result back. No new row can appear: every later write of the
    job (complete, fail, retry) is guarded by its status, and the row is gone.
    """
    with transaction(conn):
        row = conn.execute(
            "SELECT * FROM ocr_processing_jobs WHERE id = ? AND shop_id = ?", (job_id, shop_id)
        ).fetchone()
        if row is None:
            return DeletedJob(None, False)
        job = JobRecord.from_row(row)
        if not job.status.is_final:
            return DeletedJob(job, False)
        conn.execute("DELETE FROM ocr_processing_jobs WHERE id = ?", (job_id,))
        conn.execute("DELETE FROM ocr_error_logs WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM ocr_corrections WHERE job_id = ?", (job_id,))
        if job.image_hash is not None:
            conn.execute("DELETE FROM result_cache WHERE key = ?",
                         (result_cache.cache_key(job.image_hash, job.options),))
        tombstone = {**_event(job), "status": "deleted", "deleted_at": utc_now()}
        tombstone.pop("result", None)
        tombstone.pop("error", None)
        redacted = conn.execute(
            "UPDATE outbox SET payload = ?"
            " WHERE kind IN ('results', 'errors') AND json_extract(payload, '$.job_id') = ?",
            (json.dumps(tombstone), job_id),
        ).rowcount
    return DeletedJob(job, True, redacted)


def waiting_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(queued jobs, of which runnable now): what the queue limit and the direct hand-over look at.

    Reads only the queued rows (status index), unlike `queue_counts`, which counts every job ever kept."""
    queued, runnable = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(available_at <= ?), 0) FROM ocr_processing_jobs WHERE status = ?",
        (time.time(), JobStatus.QUEUED.value),
    ).fetchone()
    return int(queued), int(runnable)


def queue_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Jobs per status."""
    counts = {status.value: 0 for status in JobStatus}
    for row in conn.execute("SELECT status, COUNT(*) AS n FROM ocr_processing_jobs GROUP BY status"):
        counts[row["status"]] = row["n"]
    return counts


def _get(conn: sqlite3.Connection, job_id: str) -> JobRecord:
    return JobRecord.from_row(conn.execute("SELECT * FROM ocr_processing_jobs WHERE id = ?", (job_id,)).fetchone())


def _log_error(conn: sqlite3.Connection, job_id: str, failure: JobFailure, attempt: int) -> None:
    conn.execute(
        "INSERT INTO ocr_error_logs (job_id, error_code, error_message, details, attempt, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, failure.code, failure.message, json.dumps(failure.details) if failure.details else None,
         attempt, utc_now()),
    )


def _outbox(conn: sqlite3.Connection, kind: str, payload: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)", (kind, json.dumps(payload), utc_now())
    )


def _event(job: JobRecord) -> dict[str, Any]:
    """The outbox body for a finished job (the seed's event: job id, shop, result or error, timestamp)."""
    body: dict[str, Any] = {
        "job_id": job.id,
        "shop_id": job.shop_id,
        "user_id": job.user_id,
        "document_type": job.document_type,
        "status": job.status.value,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "completed_at": job.completed_at,
        "timestamp": job.updated_at,
    }
    if job.result is not None:
        body["result"] = job.result
    if job.error_code is not None:
        body["error"] = {"code": job.error_code, "message": job.error_message}
    return body
